/* How many CPUs this process may use: the affinity mask, capped by a
 * cgroup CPU quota (a Kubernetes CPU limit). Sizes the workers and the
 * crypto pool when the configuration leaves them at 0. */
#ifndef PX_CPUS_H
#define PX_CPUS_H

/* At least 1. */
unsigned px_cpu_count(void);
/* CPUs of a cgroup v2 cpu.max line: "200000 100000" -> 2 (rounded up);
 * "max 100000", unparsable or NULL -> 0 (no quota). */
unsigned px_cpu_quota_parse(const char *cpu_max);

#endif
