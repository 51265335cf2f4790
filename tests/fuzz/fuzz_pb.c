/* fuzz_pb.c — a reflective walk over unpacked protobuf-c messages and the
 * re-encoding round trip (see fuzz.h).  Driven by the generated
 * descriptors, so it follows ifp.proto without being edited. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define MAX_DEPTH 32 /* ifp.proto nests 3 deep; protobuf-c itself stops far below this */

static size_t elem_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return 4; /* 32-bit integers, float, enum */
    }
}

/* Unknown fields with field number 0 seen by the last walk: protobuf-c
 * accepts an over-long encoding of tag 0 (bytes 80 00: its
 * parse_tag_and_wiretype rejects only a one-byte zero tag), keeps it as an
 * unknown field and packs it back as 00, which it then refuses.  ifp never
 * re-sends a message it received, so such messages skip the round trip. */
static int zero_tags;
/* Set while ifp_fuzz_pb_check_text walks: every string must be UTF-8. */
static int want_utf8;

static void walk(const ProtobufCMessage *m, int depth);

static void walk_value(const ProtobufCFieldDescriptor *f, const void *v, int depth) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        FUZZ_CHECK(s != NULL, "string field %s is NULL", f->name);
        size_t n = ifp_fuzz_touch_str(s);
        FUZZ_CHECK(!want_utf8 || ifp_fuzz_valid_utf8(s, n), "field %s passed ifp_wire_check_text but is not UTF-8",
                   f->name);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        FUZZ_CHECK(b->len == 0 || b->data != NULL, "bytes field %s: %zu bytes at NULL", f->name, b->len);
        ifp_fuzz_touch(b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
        if (sub) {
            FUZZ_CHECK(sub->descriptor == f->descriptor, "message field %s has the wrong descriptor", f->name);
            walk(sub, depth + 1);
        }
        break;
    }
    default:
        ifp_fuzz_touch(v, elem_size(f->type));
    }
}

static void walk(const ProtobufCMessage *m, int depth) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    FUZZ_CHECK(depth < MAX_DEPTH, "message nesting deeper than %d", MAX_DEPTH);
    FUZZ_CHECK(d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "bad message descriptor");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)member;
            FUZZ_CHECK(n == 0 || arr != NULL, "repeated field %s: %zu elements at NULL", f->name, n);
            for (size_t j = 0; j < n; j++) walk_value(f, arr + j * elem_size(f->type), depth);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)((const char *)m + f->quantifier_offset);
            if (which == f->id) walk_value(f, member, depth);
        } else {
            walk_value(f, member, depth);
        }
    }
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        ifp_fuzz_touch(u->data, u->len);
        zero_tags += u->tag == 0;
    }
}

void ifp_fuzz_pb_walk(const ProtobufCMessage *m) {
    zero_tags = 0;
    walk(m, 0);
    FUZZ_CHECK(protobuf_c_message_check(m), "unpacked %s fails protobuf_c_message_check", m->descriptor->name);
}

int ifp_fuzz_pb_check_text(const ProtobufCMessage *m, const void *data, size_t len) {
    char why[256];
    memset(why, 'x', sizeof why);
    int rc = ifp_wire_check_text(m->descriptor, data, len, why, sizeof why);
    size_t n = strnlen(why, sizeof why);
    FUZZ_CHECK(n < sizeof why, "why is not NUL-terminated");
    if (rc) {
        FUZZ_CHECK(rc == -1 && n > 0 && strchr(why, ':'), "check_text returned %d with why '%s'", rc, why);
        return rc;
    }
    FUZZ_CHECK(n == 0, "check_text passed with why '%s'", why);
    want_utf8 = 1;
    walk(m, 0);
    want_utf8 = 0;
    return 0;
}

void ifp_fuzz_pb_roundtrip(const ProtobufCMessage *m, ProtobufCMessage *(*decode)(const void *, size_t)) {
    ifp_fuzz_pb_walk(m);
    if (zero_tags) return;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *a = malloc(n ? n : 1), *b = NULL;
    FUZZ_CHECK(a != NULL, "out of memory");
    FUZZ_CHECK(protobuf_c_message_pack(m, a) == n, "pack wrote a size other than get_packed_size");
    ProtobufCMessage *again = decode(a, n);
    FUZZ_CHECK(again != NULL, "%s: the re-encoding of an accepted message (%zu bytes) does not decode",
               m->descriptor->name, n);
    size_t n2 = protobuf_c_message_get_packed_size(again);
    FUZZ_CHECK(n2 == n, "%s: re-encoded twice: %zu then %zu bytes", m->descriptor->name, n, n2);
    b = malloc(n2 ? n2 : 1);
    FUZZ_CHECK(b != NULL, "out of memory");
    protobuf_c_message_pack(again, b);
    FUZZ_CHECK(memcmp(a, b, n) == 0, "%s: re-encoded twice: the bytes differ", m->descriptor->name);
    protobuf_c_message_free_unpacked(again, NULL);
    free(a);
    free(b);
}
