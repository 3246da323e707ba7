/* Target: etok_dispatch_request(), the enclave dispatcher, on a real in-memory keystore.
 *
 * Input: byte 0 flags (bit 0 control channel, bit 1 session already past HELLO, bit 2 --dev, bit 3
 * the NSM simulator attached, so that ATTEST reaches nsm_get_attestation() and the simulator; KMS
 * calls still stop before any connection, as no KMS settings are given; bit 4 with bit 1: the
 * session negotiated version RPC_VERSION_MAX instead of RPC_VERSION_MIN), byte 1 the call id, then the
 * request body. Each 32-byte run of 0x5a (the last byte may be 0x5a, 0x5b or 0x5c) is replaced by the login
 * ticket of token 0, 1 or 2 so that SIGN and DECRYPT get past the ticket check. Tokens (PIN "1234"):
 * "fuzz-ed" (Ed25519, key id 1), "fuzz-ec" (P-256, key id 2), "fuzz-rsa" (RSA-2048, key id 3), all from the
 * fixed keys below. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/log.h"
#include "common/rpc-calls.h"
#include "enclave-token/dispatch.h"
#if ENCLAVE_ACM_NSM_SIMULATOR
#include "enclave-token/nsm-sim-doc.h"
#include "enclave-token/nsm-sim.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char PEM_ED_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                 "MC4CAQAwBQYDK2VwBCIEIBJLRvibItAXCoOkusj8vuKfLP8I2eTDuKFKKMfTcmQK\n"
                                 "-----END PRIVATE KEY-----\n";

static const char PEM_ED_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                                  "MIIBiTCCATugAwIBAgIUCXPryyDdX64vgMI3aDTXw/3GXbEwBQYDK2VwMDoxGTAX\n"
                                  "BgNVBAoMEGVuY2xhdmUtYWNtIGZ1enoxHTAbBgNVBAMMFGVkMjU1MTkuZnV6ei5l\n"
                                  "eGFtcGxlMB4XDTI2MTEyMzAxNTU0MFoXDTM2MTEyMDAxNTU0MFowOjEZMBcGA1UE\n"
                                  "CgwQZW5jbGF2ZS1hY20gZnV6ejEdMBsGA1UEAwwUZWQyNTUxOS5mdXp6LmV4YW1w\n"
                                  "bGUwKjAFBgMrZXADIQAJ1HHOGysdQsOM9TiPj2AqxKLocrjaCjBMw+fYGxNxzaNT\n"
                                  "MFEwHQYDVR0OBBYEFGjwDv2j3yGcppKx1TAGQBWuYNztMB8GA1UdIwQYMBaAFGjw\n"
                                  "Dv2j3yGcppKx1TAGQBWuYNztMA8GA1UdEwEB/wQFMAMBAf8wBQYDK2VwA0EA+sv3\n"
                                  "fSTSw/cyZlrLLi0VZuw01EeKiezqZgikWScvco4qyQ7IbvZxaQkZP8IXRblXg6zB\n"
                                  "Edr/Lz7kDbBazXm/AQ==\n"
                                  "-----END CERTIFICATE-----\n";

static const char PEM_EC_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                 "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjwbaCUpdD6yoySux\n"
                                 "YICEN56WLkKiZ6FEJP0CtIgkTR6hRANCAARFvykc9PX0EaRmRbVT8bK/0zJDxpvD\n"
                                 "sE/MuTGAl8QV4VsMutgLunhUqxw+4klpnHSiNIeg7kO+wOjzUo+toEQn\n"
                                 "-----END PRIVATE KEY-----\n";

static const char PEM_EC_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                                  "MIIBwDCCAWWgAwIBAgIUNBYFBy2omm1gy8mUvtsQpWOtXw0wCgYIKoZIzj0EAwIw\n"
                                  "NTEZMBcGA1UECgwQZW5jbGF2ZS1hY20gZnV6ejEYMBYGA1UEAwwPZWMuZnV6ei5l\n"
                                  "eGFtcGxlMB4XDTI2MTEyMzAxNTU0MFoXDTM2MTEyMDAxNTU0MFowNTEZMBcGA1UE\n"
                                  "CgwQZW5jbGF2ZS1hY20gZnV6ejEYMBYGA1UEAwwPZWMuZnV6ei5leGFtcGxlMFkw\n"
                                  "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERb8pHPT19BGkZkW1U/Gyv9MyQ8abw7BP\n"
                                  "zLkxgJfEFeFbDLrYC7p4VKscPuJJaZx0ojSHoO5DvsDo81KPraBEJ6NTMFEwHQYD\n"
                                  "VR0OBBYEFCpKyKsIsYn2IpVYiBW5l4n++c68MB8GA1UdIwQYMBaAFCpKyKsIsYn2\n"
                                  "IpVYiBW5l4n++c68MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\n"
                                  "AJaXuBL1UlU37zbZev0SO++oOKegiDA/gqahxCBbfnqpAiEAsOCMpBOxCU/3hF4r\n"
                                  "6vmJOxnxYznz0ASTqgsuiE2gB/4=\n"
                                  "-----END CERTIFICATE-----\n";

static const char PEM_RSA_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6ye1zqeyp9u4Z\n"
                                  "1B9QzNAftjbjfDFfOnxjO4ZnSlZOeDol+VruIAKzl010LUVVnMDyJXnUS46eHjGa\n"
                                  "GFgHc1kefmrAnrW22KnWFGpZ0xPLNvNVY7v5wa6Yn+vfAdl5c9ingpfsYh48tqS/\n"
                                  "FG/Ley+06Jp48uN8W9FjFCF8ea9eBahxZ4LI/rOfo9y0DSMBH1jEXXdcdKb50LQV\n"
                                  "DkMO2SVDunQWKMXvlA+AR04sn8m0fniz418bt3JkYDqo3mprIDVx2tPTtI1Rr2c5\n"
                                  "VZpd6o4CRRnUEOVYkwvZttZDmKpkJArmbfnpRU2KtMs1vbxrgnEt6da0u4FXXlcF\n"
                                  "xSpYZGa9AgMBAAECggEAT+nNR7NW196XvoAkx7Zggni8IfZDzzif9/qDBZTluNuy\n"
                                  "EQYOM5uJXFlqnz4xEDAo0lBbP4r14MsNMJ6ipslgQu4V8QPVvX0TqE4CtBxctw/y\n"
                                  "6kDprrCA6LZevQG3D8GS2xPBuLW/tvzzHfb532X8IptzXzSXQ+CqhAecTftnnkLz\n"
                                  "jv62JkuE3Z56QzwF8GbTg+UyU4mLg6/ei+HX5SChPB/Pd8Jh6QH3H5zI2GbOu89X\n"
                                  "nYufOFl07Ei/QrkJ8jDs0KVjVf4Vh2xKReJv1nzpkzup/nE+uhLfgmVZsZG6lGF3\n"
                                  "fNN4xdcfscUy0UIWmNPb+Oog5Pa5iqQ+oXjYoKOEhwKBgQD6zZ5ujDGAmpH4+8DU\n"
                                  "NLP/id7tQFBlXTKsgT/kM+/rCsPg1XayI+zaQR646DN0duLhPO/oHPnjPecVnte/\n"
                                  "4jrGOIpMXMWZ0VxaLc4zs7YwiabMbAm/WvYnmtsM2gUgZaUiU1gt6CroenXFgD+j\n"
                                  "eipvG6nWZvMvuKrsP9yKXDs7DwKBgQC+qL7NNCT9gX6Yk1mFt8z5nlY30ijy5IwB\n"
                                  "FoaTkItkWhsTywVk9K5qSK/UpMFvbzZHJqXZqqFocK7KFCvwZvzKK5EpqTN10D5d\n"
                                  "TamPXlIAYusDWqQGEqJsfXKzYuObGnKezI04aP0XO7BrfB5c6yrjUWPDAuKyO8Mk\n"
                                  "PCV1kNUxcwKBgQD5TZUT/EVkucEqR04JYo4eEHVJTqnb6IVrllrlQ39UG3JUNrxz\n"
                                  "HWTeGucoFKC5P0gNbt5m0w7OhQUEp818jquvyBopB/rgCI2NkoSrPhN3Mg1cnHQg\n"
                                  "A5I2Eid2Ie4Aoyk/8qrvjx2/06Ln/LDFlrVBlrT/S3ymziERD/XwjvfNnwKBgHWq\n"
                                  "8W718qpeREJoFkUXpbKdDPsQgmM9uEZnn5DtEYpSrgluMBsZg5dm2tWzBQsAKRCK\n"
                                  "gqsuysUJXmarQl7xQKyJbOK4YWEhr4uoBbDM9nD0m7SLOVXiJEouth6ONoigLwNg\n"
                                  "nPummCTBmuULSjXwkZyPu7E8U6rKhWoUkM3ZICqPAoGAUZHL2U4rJX0eeC/2bCrM\n"
                                  "ltbAPhgpGMwr6MRmPQJQ6Sle4dUelYzuybErSTaqBEEiaaVQMKWRd7xAS2mq6mMb\n"
                                  "tl+9ho2lvO4nchmQF6oTRoyd7/fFJ8Pq08LMZY2chOrK5EJRBbV66OpxbuKVAqFB\n"
                                  "5IpRzbkaCEbQW/YTGrsTL5Y=\n"
                                  "-----END PRIVATE KEY-----\n";

static const char PEM_RSA_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                                   "MIIDTTCCAjWgAwIBAgIUIn7H9lrJiJHF+rldQ6y4rGjFaK0wDQYJKoZIhvcNAQEL\n"
                                   "BQAwNjEZMBcGA1UECgwQZW5jbGF2ZS1hY20gZnV6ejEZMBcGA1UEAwwQcnNhLmZ1\n"
                                   "enouZXhhbXBsZTAeFw0yNjExMjMwMTU1NDBaFw0zNjExMjAwMTU1NDBaMDYxGTAX\n"
                                   "BgNVBAoMEGVuY2xhdmUtYWNtIGZ1enoxGTAXBgNVBAMMEHJzYS5mdXp6LmV4YW1w\n"
                                   "bGUwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQC6ye1zqeyp9u4Z1B9Q\n"
                                   "zNAftjbjfDFfOnxjO4ZnSlZOeDol+VruIAKzl010LUVVnMDyJXnUS46eHjGaGFgH\n"
                                   "c1kefmrAnrW22KnWFGpZ0xPLNvNVY7v5wa6Yn+vfAdl5c9ingpfsYh48tqS/FG/L\n"
                                   "ey+06Jp48uN8W9FjFCF8ea9eBahxZ4LI/rOfo9y0DSMBH1jEXXdcdKb50LQVDkMO\n"
                                   "2SVDunQWKMXvlA+AR04sn8m0fniz418bt3JkYDqo3mprIDVx2tPTtI1Rr2c5VZpd\n"
                                   "6o4CRRnUEOVYkwvZttZDmKpkJArmbfnpRU2KtMs1vbxrgnEt6da0u4FXXlcFxSpY\n"
                                   "ZGa9AgMBAAGjUzBRMB0GA1UdDgQWBBRn040WWsLrVkyaF5BbNzM+R1XqGDAfBgNV\n"
                                   "HSMEGDAWgBRn040WWsLrVkyaF5BbNzM+R1XqGDAPBgNVHRMBAf8EBTADAQH/MA0G\n"
                                   "CSqGSIb3DQEBCwUAA4IBAQBwbtT5fjpP6M7WWHrOzyOhKINy929pf/sMZZCoCiLA\n"
                                   "bqPP5NSlxEeZ9cLK7INOoeAY0yh43mJqN082bu2CDapGdf7TF5SkKBMbS+SapBfz\n"
                                   "WF0HE1Sl6i64qsQkhJ4IWTuZutPtdkm8Yegxd0tSLBcoXlp6iRYw0gG6/A/TLk+o\n"
                                   "eZe+4khGA4+tLZT4i9t3QZi9t5Lv3AWFhJptOQBMkLe3Y63apMwKDTuNNATjd5Lx\n"
                                   "Lud/9HEO4FxT94zXB+f/JBPT8TPlcMTN5/NJtShzJs9EGMr55gCAUE+s+bnDstJE\n"
                                   "uGc0ALKx7PoMtp5c7z9bm4LcI4CQYpxzEgqST9twFX5O\n"
                                   "-----END CERTIFICATE-----\n";

#define TICKET_MARK 0x5a
#define N_TOKENS    3

static const struct {
        const char *label;
        uint32_t key_id;
        const char *key;
        const char *cert;
} fixture[N_TOKENS] = {
        { "fuzz-ed", 1, PEM_ED_KEY, PEM_ED_CERT },
        { "fuzz-ec", 2, PEM_EC_KEY, PEM_EC_CERT },
        { "fuzz-rsa", 3, PEM_RSA_KEY, PEM_RSA_CERT },
};

static struct etok_keystore *ks;
static struct nsm_dev *nsm; /* the simulator, or NULL in a build without it */
static uint8_t tickets[N_TOKENS][RPC_TICKET_LEN];
static uint64_t ks_generation;
static uint64_t fake_now;

/* Each input starts an hour later: PIN back-off from earlier inputs never carries over. */
static uint64_t fuzz_clock(void *userdata) {
        return fake_now;
}

static struct rpc_slice text(const char *s) {
        return (struct rpc_slice){ (const uint8_t *) s, strlen(s) };
}

static int fixture_setup(void) {
        ks = etok_keystore_free(ks);
        if (etok_keystore_new(64, &ks) < 0)
                return -1;
        etok_keystore_set_clock(ks, fuzz_clock, NULL);
        for (size_t i = 0; i < N_TOKENS; i++) {
                struct rpc_token_add_req req = { .label = text(fixture[i].label),
                                                 .pin = text("1234"),
                                                 .n_keys = 1 };
                struct rpc_slice pin = text("1234");
                uint32_t slot;

                req.keys[0] = (struct rpc_add_key){ .id = fixture[i].key_id,
                                                    .label = text("key"),
                                                    .key_pem = text(fixture[i].key),
                                                    .chain_pem = text(fixture[i].cert) };
                if (etok_keystore_add(ks, &req, &slot) < 0 ||
                    etok_keystore_login(ks, slot, &pin, tickets[i]) < 0)
                        return -1;
        }
        ks_generation = etok_keystore_generation(ks);
        return 0;
}

/* The NSM simulator with its test CA, as `enclave-token --nsm-simulator` sets it up; kept for the
 * whole run (its document maker signs each ATTEST answer). */
static int nsm_setup(void) {
#if ENCLAVE_ACM_NSM_SIMULATOR
        static struct etok_sim_doc *doc;
        struct nsm_sim *sim = NULL;

        /* A fixed time: the documents, and so the coverage, do not depend on the clock. */
        if (etok_sim_doc_new(1796601600, NULL, &doc) < 0)
                return -1;
        if (nsm_sim_new(&(struct nsm_sim_config){ .doc_fn = etok_sim_doc_make, .doc_userdata = doc }, &sim) <
            0)
                return -1;
        if (nsm_dev_new_sim(sim, &nsm) < 0)
                return -1;
#endif
        return 0;
}

/* One input through the dispatcher; *ret_status (when not NULL) gets the answer's status, or stays
 * untouched for an input too short or too long to dispatch (-EINVAL then, -ENOMEM, 0 otherwise). Also used
 * by check-rpc-request-seeds.c, which checks that the seeds reach the keys. */
static int run_input(const uint8_t *data, size_t size, enum rpc_status *ret_status) {
        static uint8_t resp[RPC_MAX_BODY_CONTROL];
        struct etok_dispatch d;
        struct etok_session s;
        struct etok_reply reply;
        struct rpc_writer w;
        uint8_t *body;
        size_t len;

        if (!ks) {
                log_set_max_level(LOG_CRIT);
                if (fixture_setup() < 0 || nsm_setup() < 0)
                        abort();
        }
        if (size < 2 || size - 2 > RPC_MAX_BODY_CONTROL)
                return -EINVAL;
        fake_now += UINT64_C(3600) * 1000000000;

        /* An exact-size copy, so that a read past the body is caught. */
        len = size - 2;
        body = malloc(len ? len : 1);
        if (!body)
                return -ENOMEM;
        memcpy(body, data + 2, len);
        for (size_t i = 0; i + RPC_TICKET_LEN <= len; i++) {
                size_t j = 0, which;

                while (j < RPC_TICKET_LEN - 1 && body[i + j] == TICKET_MARK)
                        j++;
                which = (size_t) body[i + j] - TICKET_MARK;
                if (j == RPC_TICKET_LEN - 1 && which < N_TOKENS) {
                        memcpy(body + i, tickets[which], RPC_TICKET_LEN);
                        i += RPC_TICKET_LEN - 1;
                }
        }

        d = (struct etok_dispatch){ .keystore = ks, .dev = data[0] & 4, .nsm = data[0] & 8 ? nsm : NULL };
        etok_session_init(&s, data[0] & 1 ? RPC_CHANNEL_CONTROL : RPC_CHANNEL_DATA);
        if (data[0] & 2) {
                s.state = RPC_STATE_READY;
                s.version = data[0] & 16 ? RPC_VERSION_MAX : RPC_VERSION_MIN;
        }
        rpc_writer_init(&w, resp, rpc_channel_max_body(s.channel));
        etok_dispatch_request(&d, &s, data[1], body, len, &w, &reply);
        /* A failed call answers no body; a successful one a body its own decoder accepts. */
        if (reply.status != RPC_STATUS_OK && w.len != 0)
                abort();
        if (reply.status == RPC_STATUS_OK) {
                const struct rpc_call_info *info = rpc_call_lookup(data[1]);

                if (!info || rpc_msg_check(info->response, resp, w.len) < 0)
                        abort();
        }
        if (ERR_peek_error() != 0)
                abort(); /* OpenSSL's error queue is cleared after every failure */
        free(body);
        if (ret_status)
                *ret_status = reply.status;

        /* Provisioning calls may have changed the store: start the next input from the fixture. */
        if (etok_keystore_generation(ks) != ks_generation && fixture_setup() < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        (void) run_input(data, size, NULL);
        return 0;
}
