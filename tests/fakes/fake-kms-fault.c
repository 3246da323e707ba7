/* The fake KMS's fault words. */
#include <string.h>

#include "tests/fakes/fake-kms-fault.h"

enum fkms_fault fkms_fault_parse(const char *text, unsigned *ret_ms) {
        static const struct {
                const char *word;
                enum fkms_fault f;
        } words[] = {
                { "none", FKMS_FAULT_NONE },
                { "access-denied", FKMS_FAULT_ACCESS_DENIED },
                { "bad-ciphertext", FKMS_FAULT_BAD_CIPHERTEXT },
                { "throttle", FKMS_FAULT_THROTTLE },
                { "internal", FKMS_FAULT_INTERNAL },
                { "expired-token", FKMS_FAULT_EXPIRED_TOKEN },
                { "close", FKMS_FAULT_CLOSE },
                { "garbage", FKMS_FAULT_GARBAGE },
        };
        size_t n;

        if (!text)
                return _FKMS_FAULT_INVALID;
        text += strspn(text, " \t\r\n");
        n = strcspn(text, " \t\r\n");
        if (n == 0)
                return FKMS_FAULT_NONE;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strlen(words[i].word) == n && !strncmp(text, words[i].word, n))
                        return words[i].f;
        if (n > 5 && !strncmp(text, "slow=", 5)) {
                unsigned long ms = 0;
                for (size_t i = 5; i < n; i++) {
                        if (text[i] < '0' || text[i] > '9')
                                return _FKMS_FAULT_INVALID;
                        ms = ms * 10 + (unsigned long) (text[i] - '0');
                        if (ms > FKMS_SLOW_MAX_MS)
                                return _FKMS_FAULT_INVALID;
                }
                if (ret_ms)
                        *ret_ms = (unsigned) ms;
                return FKMS_FAULT_SLOW;
        }
        return _FKMS_FAULT_INVALID;
}
