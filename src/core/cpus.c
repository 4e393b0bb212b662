/* CPUs available to the process (see cpus.h). */
#include "core/cpus.h"

#include <stdio.h>
#include <uv.h>

unsigned px_cpu_quota_parse(const char *cpu_max)
{
    unsigned long long quota, period;
    if (!cpu_max || sscanf(cpu_max, "%llu %llu", &quota, &period) != 2 || period == 0 || quota == 0)
        return 0;                                   /* "max 100000": no limit */
    return (unsigned)((quota + period - 1) / period);
}

/* CPUs of the cgroup's quota (v2 cpu.max, else v1 cfs_quota_us), 0 if none. */
static unsigned cgroup_cpus(void)
{
    char buf[96], p[32];
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    unsigned n = 0;

    if (f) {
        if (fgets(buf, sizeof buf, f))
            n = px_cpu_quota_parse(buf);
        fclose(f);
        return n;
    }
    if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r"))) {
        long long q = -1;
        if (fscanf(f, "%lld", &q) != 1)
            q = -1;
        fclose(f);
        if (q > 0 && (f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r"))) {
            if (fgets(p, sizeof p, f)) {
                snprintf(buf, sizeof buf, "%lld %s", q, p);
                n = px_cpu_quota_parse(buf);
            }
            fclose(f);
        }
    }
    return n;
}

unsigned px_cpu_count(void)
{
    unsigned n = uv_available_parallelism(), q = cgroup_cpus();
    return q && q < n ? q : n;
}
