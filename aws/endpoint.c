/* AWS partitions and host names (sdk-c v0.4.4's suffix rules, conservative about prefixes). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "aws/endpoint.h"

static const struct {
        const char *prefix; /* longest first where one is a prefix of another */
        enum aws_partition partition;
} prefixes[] = {
        { "cn-", AWS_PARTITION_CN },
        { "eusc-", AWS_PARTITION_EUSC },
        { "us-isob-", AWS_PARTITION_ISO_B },
        { "us-iso-", AWS_PARTITION_ISO },
};

static const struct {
        const char *name, *suffix;
} partitions[_AWS_PARTITION_MAX] = {
        [AWS_PARTITION_AWS] = { "aws", "amazonaws.com" },
        [AWS_PARTITION_CN] = { "aws-cn", "amazonaws.com.cn" },
        [AWS_PARTITION_EUSC] = { "aws-eusc", "amazonaws.eu" },
        [AWS_PARTITION_ISO] = { "aws-iso", "c2s.ic.gov" },
        [AWS_PARTITION_ISO_B] = { "aws-iso-b", "sc2s.sgov.gov" },
};

const char *aws_partition_to_string(enum aws_partition p) {
        return (int) p >= 0 && p < _AWS_PARTITION_MAX ? partitions[p].name : NULL;
}

const char *aws_partition_dns_suffix(enum aws_partition p) {
        return (int) p >= 0 && p < _AWS_PARTITION_MAX ? partitions[p].suffix : NULL;
}

static bool lower_digit(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int aws_region_validate(const char *region, struct aws_err *e) {
        size_t n = region ? strnlen(region, AWS_REGION_MAX + 1) : 0;
        bool dash = false;

        if (n == 0 || n > AWS_REGION_MAX)
                return aws_err(e, -EINVAL, "region: empty or longer than %u bytes", AWS_REGION_MAX);
        if (region[0] < 'a' || region[0] > 'z')
                return aws_err(e, -EINVAL, "region: must start with a lower-case letter");
        for (size_t i = 0; i < n; i++) {
                if (region[i] == '-') {
                        if (region[i - 1] == '-' || i + 1 == n)
                                return aws_err(e, -EINVAL, "region: empty part at byte %zu", i);
                        dash = true;
                } else if (!lower_digit(region[i]))
                        return aws_err(e, -EINVAL, "region: invalid character at byte %zu (only [a-z0-9-])",
                                       i);
        }
        if (!dash)
                return aws_err(e, -EINVAL, "region: no '-' (like us-east-1)");
        return 0;
}

int aws_region_partition(const char *region, enum aws_partition *ret, struct aws_err *e) {
        int r = aws_region_validate(region, e);

        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(region, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0) {
                        *ret = prefixes[i].partition;
                        return 0;
                }
        *ret = AWS_PARTITION_AWS;
        return 0;
}

int aws_dns_suffix_validate(const char *suffix, struct aws_err *e) {
        size_t n = suffix ? strnlen(suffix, AWS_DNS_SUFFIX_MAX + 1) : 0, start = 0, labels = 0;

        if (n == 0 || n > AWS_DNS_SUFFIX_MAX)
                return aws_err(e, -EINVAL, "DNS suffix: empty or longer than %u bytes", AWS_DNS_SUFFIX_MAX);
        for (size_t i = 0; i <= n; i++) {
                if (i < n && suffix[i] != '.') {
                        if (!lower_digit(suffix[i]) && suffix[i] != '-')
                                return aws_err(e, -EINVAL, "DNS suffix: invalid character at byte %zu", i);
                        continue;
                }
                if (i == start || i - start > 63)
                        return aws_err(e, -EINVAL, "DNS suffix: label at byte %zu empty or over 63 bytes",
                                       start);
                if (suffix[start] == '-' || suffix[i - 1] == '-')
                        return aws_err(e, -EINVAL, "DNS suffix: label at byte %zu starts or ends with '-'",
                                       start);
                labels++;
                start = i + 1;
        }
        if (labels < 2)
                return aws_err(e, -EINVAL, "DNS suffix: a single label");
        return 0;
}

int aws_service_host(const char *service, const char *region, const char *suffix_override, char *buf,
                     size_t size, struct aws_err *e) {
        enum aws_partition p;
        const char *suffix;
        size_t sl = service ? strnlen(service, 64) : 0;
        int r, n;

        if (sl == 0 || sl > 63)
                return aws_err(e, -EINVAL, "service: empty or longer than 63 bytes");
        for (size_t i = 0; i < sl; i++)
                if (!lower_digit(service[i]) && service[i] != '-')
                        return aws_err(e, -EINVAL, "service: invalid character at byte %zu", i);
        if ((r = aws_region_partition(region, &p, e)) < 0)
                return r;
        if (suffix_override) {
                if ((r = aws_dns_suffix_validate(suffix_override, e)) < 0)
                        return r;
                suffix = suffix_override;
        } else
                suffix = aws_partition_dns_suffix(p);
        n = snprintf(buf, size, "%s.%s.%s", service, region, suffix);
        if (n < 0 || (size_t) n >= size || (size_t) n > AWS_HOST_MAX)
                return aws_err(e, -ENOBUFS, "host: does not fit in %zu bytes", size);
        return n;
}

int aws_kms_host(const char *region, const char *suffix_override, char *buf, size_t size,
                 struct aws_err *e) {
        return aws_service_host("kms", region, suffix_override, buf, size, e);
}
