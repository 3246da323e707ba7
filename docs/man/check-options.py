#!/usr/bin/env python3
"""The man pages and the programs agree (TAP).

usage: check-options.py MAN_SRC_DIR AGENT_CONFIG_DIR P11MODULE_DIR PROGRAM=PATH... [absent:PROGRAM=--OPTION...]

For each program, the long options its --help lists (option lines, and the Usage: block) must be the
long options its page defines (lines starting with `*-` in the OPTIONS section) and the other way round.
enclave-acm: its top-level --help against OPTIONS, and for every command of its "Commands:" list,
`enclave-acm COMMAND --help` against the page's `## COMMAND` section under COMMANDS (every such section
must be a command too). acm.yaml(5): every key in the agent's config parser tables is defined in the
page (a line starting with `*key*`) and every key the page defines is one the parser knows.
enclave-acm-pkcs11(7): every ENCLAVE_ACM_* variable the module reads (p11module/*.c) is in its ENVIRONMENT
section and the other way round.
A failure names the option or key, the program and the page to update.
absent:PROGRAM=--OPTION: an option this build leaves out of PROGRAM (enclave-token --nsm-simulator with
-Dnsm_simulator=false); the page documents it anyway.
"""
import os
import re
import subprocess
import sys

PAGES = {
    "enclave-acm": "enclave-acm.1.scd",
    "enclave-acm-agent": "enclave-acm-agent.8.scd",
    "enclave-token": "enclave-token.8.scd",
}
LONG = re.compile(r"--[a-z0-9][a-z0-9-]*")

results = []


def check(ok, name, diag=()):
    results.append((ok, name, list(diag)))


def sections(path):
    """{(level-1 heading, level-2 heading or None): [lines]}"""
    out, h1, h2 = {}, None, None
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith("## "):
                h2 = line[3:].strip()
            elif line.startswith("# "):
                h1, h2 = line[2:].strip(), None
            out.setdefault((h1, h2), []).append(line)
    return out


def page_options(lines):
    opts = set()
    for line in lines:
        if line.startswith("*-"):
            opts.update(LONG.findall(line))
    return opts


def run_help(argv):
    p = subprocess.run(argv + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20, env=dict(os.environ, LC_ALL="C"))
    text = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("%s --help exited %d: %s" % (" ".join(argv), p.returncode, text.strip()))
    return text


def help_options(text):
    """(options defined on option lines, options in the Usage: block)"""
    defined, usage = set(), set()
    in_usage = False
    for line in text.splitlines():
        if line.startswith("Usage:"):
            in_usage = True
        elif not line.strip():
            in_usage = False
        if in_usage:
            usage.update(LONG.findall(line))
        elif re.match(r"^\s+-", line):
            # The option column ends where two spaces start the description.
            defined.update(LONG.findall(re.split(r"\s{2,}", line.strip(), 1)[0]))
    return defined, usage


def help_commands(text):
    cmds, in_cmds = [], False
    for line in text.splitlines():
        if line.strip() == "Commands:":
            in_cmds = True
            continue
        if in_cmds and not line.strip():
            break
        m = re.match(r"^  ([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*)(?=\s|$)", line) if in_cmds else None
        if m:
            cmds.append(m.group(1))
    return cmds


ABSENT = {}


def compare(what, in_help, in_page, page):
    missing = sorted(in_help - in_page)
    extra = sorted(in_page - in_help - ABSENT.get(what, set()))
    diag = ["%s is in %s --help but not in docs/man/%s: add it to the page" % (o, what, page) for o in missing]
    diag += ["%s is in docs/man/%s but not in %s --help: remove it from the page (or from the program?)"
             % (o, page, what) for o in extra]
    check(not missing and not extra and in_help, "%s: --help and docs/man/%s list the same %d options"
          % (what, page, len(in_help)), diag or ([] if in_help else ["no option found in --help"]))


def check_program(name, path, man_dir):
    page = PAGES[name]
    secs = sections(os.path.join(man_dir, page))
    text = run_help([path])
    defined, usage = help_options(text)
    top = defined | usage
    compare(name, top, page_options(secs.get(("OPTIONS", None), [])), page)
    if name != "enclave-acm":
        return
    cmds = help_commands(text)
    check(len(cmds) > 0, "enclave-acm --help lists commands", ["no 'Commands:' list found"])
    page_cmds = {h2 for (h1, h2) in secs if h1 == "COMMANDS" and h2}
    for cmd in cmds:
        if cmd not in page_cmds:
            check(False, "enclave-acm %s: documented" % cmd,
                  ["command '%s' is in enclave-acm --help but docs/man/%s has no '## %s' section under "
                   "'# COMMANDS'" % (cmd, page, cmd)])
            continue
        d, u = help_options(run_help([path] + cmd.split()))
        # The Usage: line repeats the global options ([--control ADDRESS]); the command's own option
        # lines may reuse a name (web apply --control direct|systemd).
        compare("enclave-acm %s" % cmd, d | (u - top), page_options(secs[("COMMANDS", cmd)]), page)
    for cmd in sorted(page_cmds - set(cmds)):
        check(False, "enclave-acm %s: a command" % cmd,
              ["docs/man/%s documents '## %s', which enclave-acm --help does not list" % (page, cmd)])


def config_keys(config_dir):
    keys = set()
    entry = re.compile(r'^\s*\{\s*"([A-Za-z_][A-Za-z0-9_]*)",\s*[A-Za-z0-9_]+,\s*[a-z_]+')
    for fn in sorted(os.listdir(config_dir)):
        if fn.endswith(".c"):
            with open(os.path.join(config_dir, fn), encoding="utf-8") as f:
                for line in f:
                    m = entry.match(line)
                    if m:
                        keys.add(m.group(1))
    return keys


def check_config_page(man_dir, config_dir):
    page = "acm.yaml.5.scd"
    secs = sections(os.path.join(man_dir, page))
    roots = {"ENCLAVE", "OPTIONS", "LOG", "TOKENS"}
    documented = {h1.lower() for (h1, _h2) in secs if h1 in roots}
    for (h1, _h2), lines in secs.items():
        if h1 in roots:
            for line in lines:
                m = re.match(r"^\*([A-Za-z_][A-Za-z0-9_]*)\*", line)
                if m:
                    documented.add(m.group(1))
    known = config_keys(config_dir)
    missing, extra = sorted(known - documented), sorted(documented - known)
    diag = ["acm.yaml key '%s' is parsed by agent/config/ but not defined in docs/man/%s: add it" % (k, page)
            for k in missing]
    diag += ["docs/man/%s defines '%s', which agent/config/ does not parse" % (page, k) for k in extra]
    check(len(known) > 20 and not missing and not extra,
          "acm.yaml: agent/config/ and docs/man/%s know the same %d keys" % (page, len(known)),
          diag or ([] if len(known) > 20 else ["only %d keys found in agent/config/*.c" % len(known)]))


def check_module_env(man_dir, p11_dir):
    page = "enclave-acm-pkcs11.7.scd"
    secs = sections(os.path.join(man_dir, page))
    documented = set()
    for line in secs.get(("ENVIRONMENT", None), []):
        m = re.match(r"^\*(ENCLAVE_ACM_[A-Z0-9_]+)\*", line)
        if m:
            documented.add(m.group(1))
    read = set()
    for fn in sorted(os.listdir(p11_dir)):
        if fn.endswith(".c"):
            with open(os.path.join(p11_dir, fn), encoding="utf-8") as f:
                # The names the module passes to secure_getenv() or its number parser, as literals.
                read.update(re.findall(r'(?:secure_getenv\(|env_number\(&?\w+, )"(ENCLAVE_ACM_[A-Z0-9_]+)"', f.read()))
    missing, extra = sorted(read - documented), sorted(documented - read)
    diag = ["p11module/ reads %s, which docs/man/%s does not list under ENVIRONMENT" % (v, page) for v in missing]
    diag += ["docs/man/%s lists %s, which p11module/ does not read" % (page, v) for v in extra]
    check(len(read) >= 3 and not missing and not extra,
          "enclave-acm-pkcs11: p11module/ and docs/man/%s know the same %d variables" % (page, len(read)),
          diag or ([] if len(read) >= 3 else ["only %d variables found in p11module/*.c" % len(read)]))


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    man_dir, config_dir, p11_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    progs = {}
    for a in sys.argv[4:]:
        name, value = a.split("=", 1)
        if name.startswith("absent:"):
            ABSENT.setdefault(name[len("absent:"):], set()).add(value)
        else:
            progs[name] = value
    if set(progs) != set(PAGES):
        print("expected programs %s" % sorted(PAGES), file=sys.stderr)
        return 2
    for name in sorted(progs):
        try:
            check_program(name, progs[name], man_dir)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            check(False, "%s --help" % name, [str(e)])
    check_config_page(man_dir, config_dir)
    check_module_env(man_dir, p11_dir)
    for i, (ok, name, diag) in enumerate(results, 1):
        print("%s %d %s" % ("ok" if ok else "not ok", i, name))
        for d in diag if not ok else []:
            print("# " + d)
    print("1..%d" % len(results))
    return 0 if all(ok for ok, _n, _d in results) else 1


if __name__ == "__main__":
    sys.exit(main())
