/* libFuzzer harness: pcd-handoff's argument parsing and its log lines.
 *
 * The input is CONTAINER_ID, then the argv words after the program name, all
 * separated by NUL bytes. The shim builds argv from a binary:// URI's query
 * (`k v k v ...`, any order, any bytes but NUL), and the environment's
 * CONTAINER_ID reaches every log line, so both are attacker-shaped strings.
 *
 * The helper's source is included whole so the harness reaches its static
 * functions; its main is renamed, nothing else changes.
 */
#include "harness.h"

/* Before the helper's own includes: its log lines go to /dev/null, not into the
 * fuzzer's output (unistd.h is include-guarded, so this definition stays). */
#include <unistd.h>
#undef STDERR_FILENO
static int harness_log_fd = -1;
#define STDERR_FILENO harness_log_fd

#define main pcd_handoff_main
#include "../csrc/handoff/pcd-handoff.c"
#undef main

#define MAX_WORDS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    harness_log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    SETUP(harness_log_fd >= 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each word in its own allocation, so that reading past one is an ASan report. */
    char *words[MAX_WORDS + 1];
    int nwords = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && nwords < MAX_WORDS; i++) {
        if (i == size || data[i] == '\0') {
            words[nwords] = malloc(i - start + 1);
            SETUP(words[nwords] != NULL);
            memcpy(words[nwords], data + start, i - start);
            words[nwords][i - start] = '\0';
            nwords++;
            start = i + 1;
        }
    }
    char *argv[MAX_WORDS + 1];
    int argc = 0;
    argv[argc++] = "pcd-handoff";
    for (int i = 1; i < nwords; i++)
        argv[argc++] = words[i];
    argv[argc] = NULL;

    g_container = nwords > 0 && words[0][0] != '\0' ? words[0] : "?";
    struct config cfg;
    int rc = parse_args(argc, argv, &cfg);
    CHECK(rc == 0 || rc == -1, "parse_args returned %d", rc);
    if (rc == 0) {
        /* Accepted: pairs, a known key in every even slot, an absolute socket. */
        CHECK((argc - 1) % 2 == 0, "accepted %d words", argc - 1);
        CHECK(cfg.socket_path != NULL && cfg.socket_path[0] == '/', "socket %s", cfg.socket_path);
        CHECK(cfg.owner_uid != (uid_t)-1, "owner_uid -1 means no change to chown");
        int found = 0;
        for (int i = 1; i + 1 < argc; i += 2) {
            CHECK(strcmp(argv[i], "socket") == 0 || strcmp(argv[i], "owner_uid") == 0, "key %s", argv[i]);
            if (argv[i + 1] == cfg.socket_path)
                found = strcmp(argv[i], "socket") == 0;
        }
        CHECK(found, "the socket path is not a socket argument's value");
    }
    /* The longest log line: a maximal id and a message far over the buffer. */
    logmsg("unknown argument %s", argc > 1 ? argv[argc - 1] : "");
    g_container = "?";
    for (int i = 0; i < nwords; i++)
        free(words[i]);
    return 0;
}
