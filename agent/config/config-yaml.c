/* A bounded tree from libyaml's event parser: depth, node count and scalar sizes capped, no aliases. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "agent/config/config-internal.h"
#include "common/secret.h"

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_MAP "tag:yaml.org,2002:map"
#define TAG_SEQ "tag:yaml.org,2002:seq"

struct builder {
        struct agent_config_diag *diag;
        struct ynode *root;
        struct ynode *stack[AGENT_CONFIG_MAX_DEPTH];
        size_t depth;
        size_t n_nodes;
        unsigned n_documents;
};

struct ynode *ynode_free(struct ynode *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_items; i++)
                ynode_free(n->items[i]);
        free(n->items);
        if (n->value) {
                secret_wipe(n->value, n->len);
                free(n->value);
        }
        free(n);
        return NULL;
}

bool ynode_is_null(const struct ynode *n) {
        static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

        if (!n || n->type != YNODE_SCALAR || !n->plain)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                if (strcmp(n->value, nulls[i]) == 0)
                        return true;
        return false;
}

/* libyaml frees its buffers and tokens without wiping them; they hold the text, PINs included. */
static void parser_wipe_and_delete(yaml_parser_t *p) {
        if (p->raw_buffer.start)
                secret_wipe(p->raw_buffer.start, (size_t) (p->raw_buffer.end - p->raw_buffer.start));
        if (p->buffer.start)
                secret_wipe(p->buffer.start, (size_t) (p->buffer.end - p->buffer.start));
        for (yaml_token_t *t = p->tokens.head; t && t != p->tokens.tail; t++)
                if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value)
                        secret_wipe(t->data.scalar.value, t->data.scalar.length);
        yaml_parser_delete(p);
}

static void event_wipe_and_delete(yaml_event_t *e) {
        if (e->type == YAML_SCALAR_EVENT && e->data.scalar.value)
                secret_wipe(e->data.scalar.value, e->data.scalar.length);
        yaml_event_delete(e);
}

/* The key path of the node being added, in the walker's spelling: tokens[0].source.Acm. */
static char *builder_path(const struct builder *b) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        bool first = true;

        if (!f)
                return NULL;
        for (size_t i = 0; i < b->depth; i++) {
                const struct ynode *c = b->stack[i];
                bool last = i + 1 == b->depth; /* deeper levels are the last item of their parent */
                const struct ynode *key = NULL;

                if (c->type == YNODE_SEQUENCE)
                        fprintf(f, "[%zu]", last ? c->n_items : c->n_items - 1);
                else if (!last)
                        key = c->items[c->n_items - 2];
                else if (c->n_items % 2 == 1)
                        key = c->items[c->n_items - 1];
                if (key) {
                        fprintf(f, "%s%s", first ? "" : ".", key->value);
                        first = false;
                }
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...) _printf_(3, 4);
static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...) {
        _cleanup_free_ char *path = builder_path(b), *msg = NULL;
        va_list ap;
        int r;

        if (!path)
                return -ENOMEM;
        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        r = config_diag_add(b->diag, AGENT_CONFIG_ERROR, (unsigned) m->line + 1, (unsigned) m->column + 1,
                            path, "%s", msg);
        return r < 0 ? r : -EINVAL;
}

static int node_new(struct builder *b, enum ynode_type type, const yaml_mark_t *m, struct ynode **ret) {
        struct ynode *n;

        if (b->n_nodes >= AGENT_CONFIG_MAX_NODES)
                return fail(b, m, "too many YAML nodes (more than %d)", AGENT_CONFIG_MAX_NODES);
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        b->n_nodes++;
        n->type = type;
        n->line = (unsigned) m->line + 1;
        n->column = (unsigned) m->column + 1;
        *ret = n;
        return 0;
}

/* Takes ownership of n, also on failure. */
static int attach(struct builder *b, struct ynode *n, const yaml_mark_t *m) {
        _cleanup_(ynode_freep) struct ynode *owned = n;
        struct ynode *parent;

        if (b->depth == 0) {
                b->root = TAKE_PTR(owned);
                return 0;
        }
        parent = b->stack[b->depth - 1];
        if (parent->type == YNODE_MAPPING && parent->n_items % 2 == 0 && n->type != YNODE_SCALAR)
                return fail(b, m, "a mapping key must be a plain string, not a %s",
                            n->type == YNODE_MAPPING ? "mapping" : "sequence");
        if (parent->n_items == parent->n_alloc) {
                size_t na = parent->n_alloc ? parent->n_alloc * 2 : 8;
                struct ynode **items = reallocarray(parent->items, na, sizeof(*items));

                if (!items)
                        return -ENOMEM;
                parent->items = items;
                parent->n_alloc = na;
        }
        parent->items[parent->n_items++] = TAKE_PTR(owned);
        return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev) {
        const yaml_mark_t *m = &ev->start_mark;
        const char *tag = (const char *) ev->data.scalar.tag;
        size_t len = ev->data.scalar.length;
        struct ynode *n = NULL;
        int r;

        if (ev->data.scalar.anchor)
                return fail(b, m, "YAML anchors (&) are not supported");
        if (tag && strcmp(tag, TAG_STR) != 0)
                return fail(b, m, "YAML tag '%.*s%s' is not supported (only !!str)",
                            CONFIG_VALUE(tag, strlen(tag)));
        if (len > AGENT_CONFIG_MAX_STRING)
                return fail(b, m, "value is longer than %d bytes", AGENT_CONFIG_MAX_STRING);
        if (memchr(ev->data.scalar.value, 0, len))
                return fail(b, m, "value contains a NUL character");

        r = node_new(b, YNODE_SCALAR, m, &n);
        if (r < 0)
                return r;
        n->value = malloc(len + 1);
        if (!n->value) {
                ynode_free(n);
                return -ENOMEM;
        }
        memcpy(n->value, ev->data.scalar.value, len);
        n->value[len] = '\0';
        n->len = len;
        n->plain = !tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return attach(b, n, m);
}

static int on_collection_start(struct builder *b, const yaml_event_t *ev) {
        const yaml_mark_t *m = &ev->start_mark;
        bool is_map = ev->type == YAML_MAPPING_START_EVENT;
        const char *anchor =
                (const char *) (is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
        const char *tag = (const char *) (is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
        struct ynode *n = NULL;
        int r;

        if (anchor)
                return fail(b, m, "YAML anchors (&) are not supported");
        if (tag && strcmp(tag, is_map ? TAG_MAP : TAG_SEQ) != 0)
                return fail(b, m, "YAML tag '%.*s%s' is not supported", CONFIG_VALUE(tag, strlen(tag)));
        if (b->depth >= AGENT_CONFIG_MAX_DEPTH)
                return fail(b, m, "nested deeper than %d levels", AGENT_CONFIG_MAX_DEPTH);

        r = node_new(b, is_map ? YNODE_MAPPING : YNODE_SEQUENCE, m, &n);
        if (r < 0)
                return r;
        r = attach(b, n, m);
        if (r < 0)
                return r;
        b->stack[b->depth++] = n;
        return 0;
}

/* A libyaml error as a diag entry. Its messages never quote the text, only describe it. */
static int parser_error(struct builder *b, const yaml_parser_t *p, const char *text, size_t len) {
        yaml_mark_t m = p->problem_mark;
        const char *problem = p->problem ? p->problem : "unknown error";

        switch (p->error) {
        case YAML_MEMORY_ERROR: return -ENOMEM;
        case YAML_READER_ERROR:
                /* no mark, only an offset into the input */
                m = (yaml_mark_t){};
                for (size_t i = 0; i < MIN(p->problem_offset, len); i++)
                        if (text[i] == '\n') {
                                m.line++;
                                m.column = 0;
                        } else
                                m.column++;
                return fail(b, &m, "invalid input: %s", problem);
        default:
                if (p->context)
                        return fail(b, &m, "invalid YAML: %s (%s, line %zu column %zu)", problem, p->context,
                                    p->context_mark.line + 1, p->context_mark.column + 1);
                return fail(b, &m, "invalid YAML: %s", problem);
        }
}

static int on_event(struct builder *b, const yaml_event_t *ev) {
        switch (ev->type) {
        case YAML_DOCUMENT_START_EVENT:
                if (b->n_documents++ > 0)
                        return fail(b, &ev->start_mark, "only one YAML document is allowed");
                return 0;
        case YAML_ALIAS_EVENT: return fail(b, &ev->start_mark, "YAML aliases (*) are not supported");
        case YAML_SCALAR_EVENT: return on_scalar(b, ev);
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: return on_collection_start(b, ev);
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                if (b->depth > 0)
                        b->depth--;
                return 0;
        default: return 0;
        }
}

int config_yaml_parse(const char *text, size_t len, struct agent_config_diag *diag, struct ynode **ret) {
        _cleanup_(parser_wipe_and_delete) yaml_parser_t p = {};
        struct builder b = { .diag = diag };
        int r = 0;

        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *) text, len);

        for (;;) {
                _cleanup_(event_wipe_and_delete) yaml_event_t ev = {};

                if (!yaml_parser_parse(&p, &ev)) {
                        r = parser_error(&b, &p, text, len);
                        break;
                }
                if (ev.type == YAML_STREAM_END_EVENT)
                        break;
                r = on_event(&b, &ev);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                ynode_free(b.root);
                return r;
        }
        *ret = b.root;
        return 0;
}
