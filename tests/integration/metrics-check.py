#!/usr/bin/env python3
"""Checks a Prometheus text exposition (format 0.0.4) the way `promtool check metrics` does, and more
strictly for what enclave-acm promises, and reads values out of it for the tests.

  metrics-check.py check FILE       exit 0 if valid, else one line per problem (with the line number)
  metrics-check.py get FILE SERIES  prints the value of SERIES, e.g. 'x_total{token="web",code="A"}'
                                    (exactly these labels, any order); exit 1 if absent
  metrics-check.py sum FILE NAME [LABEL=VALUE...]
                                    the sum over the samples of NAME whose labels include these

Checks: every line is a HELP, a TYPE or a sample; names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
[a-zA-Z_][a-zA-Z0-9_]* (not __*); label values use only the escapes \\\\ \\" \\n; one HELP and one TYPE per
family, before its samples, and each family's lines together; families sorted by name; every sample
belongs to a TYPE'd family (a histogram's as NAME_bucket / _sum / _count); counters end in _total and
are >= 0; no duplicate series; per histogram series the buckets' le increase, their counts do not
decrease, le="+Inf" is there and equals _count, and _sum is there."""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(s, where, problems):
    """s is what is between { and }; returns a tuple of (name, value) pairs."""
    out, i = [], 0
    while i < len(s):
        m = re.match(r"([^=,{}\s]+)=\"", s[i:])
        if not m:
            problems.append(f"{where}: malformed labels at '{s[i:]}'")
            return None
        name, i = m.group(1), i + m.end()
        if not LABEL.match(name) or name.startswith("__"):
            problems.append(f"{where}: bad label name '{name}'")
        val = []
        while True:
            if i >= len(s):
                problems.append(f"{where}: unterminated label value")
                return None
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    problems.append(f"{where}: bad escape in a label value")
                    return None
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                problems.append(f"{where}: raw newline in a label value")
                return None
            else:
                val.append(c)
                i += 1
        out.append((name, "".join(val)))
        if i < len(s):
            if s[i] != ",":
                problems.append(f"{where}: expected ',' after a label")
                return None
            i += 1
    names = [n for n, _ in out]
    if len(names) != len(set(names)):
        problems.append(f"{where}: a label name given twice")
    return tuple(out)


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    return float(s)


def parse(text):
    problems, samples, helps, types, order = [], [], {}, {}, []
    if text and not text.endswith("\n"):
        problems.append("the exposition does not end with a newline")
    for no, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        where = f"line {no}"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4 and line.startswith("# TYPE "):
                problems.append(f"{where}: TYPE without a type")
                continue
            kind, name = parts[1], parts[2]
            if not NAME.match(name):
                problems.append(f"{where}: bad metric name '{name}'")
            table = helps if kind == "HELP" else types
            if name in table:
                problems.append(f"{where}: second {kind} for '{name}'")
            if kind == "TYPE":
                if parts[3] not in TYPES:
                    problems.append(f"{where}: unknown type '{parts[3]}'")
                if any(s[4] == name for s in samples):
                    problems.append(f"{where}: TYPE of '{name}' after its samples")
                if order and order[-1] != name and name in order:
                    problems.append(f"{where}: family '{name}' is split")
            if not order or order[-1] != name:
                order.append(name)
            table[name] = parts[3] if len(parts) > 3 else ""
            continue
        if line.startswith("#") or line == "":
            problems.append(f"{where}: unexpected line '{line}'")
            continue
        m = re.match(r"([^{\s]+)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$", line)
        if not m:
            problems.append(f"{where}: not a sample: '{line}'")
            continue
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        if not NAME.match(name):
            problems.append(f"{where}: bad metric name '{name}'")
        lab = parse_labels(labels, where, problems)
        if lab is None:
            continue
        try:
            v = parse_value(value)
        except ValueError:
            problems.append(f"{where}: bad value '{value}'")
            continue
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                family = base
        if family not in types:
            problems.append(f"{where}: sample '{name}' has no TYPE'd family")
        elif order[-1] != family:
            problems.append(f"{where}: sample '{name}' is not with its family's lines")
        samples.append((no, name, lab, v, family))
    return problems, samples, helps, types, order


def check(text):
    problems, samples, helps, types, order = parse(text)
    if order != sorted(order):
        problems.append("families are not sorted by name")
    for name in types:
        if name not in helps:
            problems.append(f"'{name}' has no HELP")
    seen = set()
    hist = {}
    for no, name, lab, v, family in samples:
        key = (name, frozenset(lab))
        if key in seen:
            problems.append(f"line {no}: duplicate series {name}{dict(lab)}")
        seen.add(key)
        t = types.get(family)
        if t == "counter":
            if not name.endswith("_total"):
                problems.append(f"line {no}: counter '{name}' does not end in _total")
            if not v >= 0:
                problems.append(f"line {no}: counter '{name}' is {v}")
        if t == "histogram":
            rest = frozenset(x for x in lab if x[0] != "le")
            h = hist.setdefault((family, rest), {"buckets": [], "sum": None, "count": None})
            if name == family + "_bucket":
                le = dict(lab).get("le")
                if le is None:
                    problems.append(f"line {no}: a bucket without le")
                    continue
                h["buckets"].append((parse_value(le), v, no))
            elif name == family + "_sum":
                h["sum"] = v
            elif name == family + "_count":
                h["count"] = v
            else:
                problems.append(f"line {no}: '{name}' in histogram '{family}'")
    for (family, rest), h in hist.items():
        where = f"{family}{dict(rest)}"
        b = h["buckets"]
        if not b or b[-1][0] != math.inf:
            problems.append(f"{where}: no le=\"+Inf\" bucket last")
        for (le0, c0, _), (le1, c1, no) in zip(b, b[1:]):
            if not le1 > le0:
                problems.append(f"line {no}: {where}: le does not increase")
            if c1 < c0:
                problems.append(f"line {no}: {where}: bucket counts decrease")
        if h["count"] is None or h["sum"] is None:
            problems.append(f"{where}: no _count or _sum")
        elif b and b[-1][1] != h["count"]:
            problems.append(f"{where}: +Inf bucket {b[-1][1]} != _count {h['count']}")
    return problems, samples


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    text = open(sys.argv[2], encoding="utf-8").read()
    problems, samples = check(text)
    if sys.argv[1] == "check":
        for p in problems:
            print(p)
        if not samples:
            print("no sample at all")
            return 1
        return 1 if problems else 0
    if problems:
        print("invalid exposition: " + "; ".join(problems[:5]), file=sys.stderr)
        return 2
    if sys.argv[1] == "get":
        m = re.match(r"([^{]+)(\{(.*)\})?$", sys.argv[3])
        want_labels = parse_labels(m.group(3) or "", "argument", [])
        want = (m.group(1), frozenset(want_labels))
        for _, name, lab, v, _ in samples:
            if (name, frozenset(lab)) == want:
                print(int(v) if v == int(v) else v)
                return 0
        return 1
    if sys.argv[1] == "sum":
        want = dict(a.split("=", 1) for a in sys.argv[4:])
        total = sum(v for _, name, lab, v, _ in samples
                    if name == sys.argv[3] and all(dict(lab).get(k) == x for k, x in want.items()))
        print(int(total) if total == int(total) else total)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
