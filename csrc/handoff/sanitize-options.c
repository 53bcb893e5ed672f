/* Sanitizer defaults for pcd-handoff, linked in only by a sanitizer build
 * (PCD_SANITIZE with PCD_SANITIZE_LOG, as scripts/sanitize builds it).
 *
 * The shim, and the tests that play it, start the helper with exactly
 * CONTAINER_ID and CONTAINER_NAMESPACE in its environment, so ASAN_OPTIONS and
 * UBSAN_OPTIONS never reach it: a report would go to whatever its stderr is,
 * and a test that only looks at the socket could pass over it. These defaults
 * send every report to PCD_SANITIZE_LOG.<pid>, which scripts/sanitize fails on.
 * Leak checking stays on: this is a plain C program, with no interpreter whose
 * own allocations would drown the report.
 */
#ifndef PCD_SANITIZE_LOG
#error "PCD_SANITIZE_LOG must name the report file prefix"
#endif

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

__attribute__((visibility("default"), used)) const char *__asan_default_options(void)
{
    return "log_path=" PCD_SANITIZE_LOG ":detect_leaks=1";
}

__attribute__((visibility("default"), used)) const char *__ubsan_default_options(void)
{
    return "log_path=" PCD_SANITIZE_LOG ":print_stacktrace=1:halt_on_error=1";
}
