#include "CSystem.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

static volatile sig_atomic_t csystem_stop = 0;

static void csystem_on_signal(int sig) { csystem_stop = sig; }

void CSystem_install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = csystem_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int CSystem_stop_requested(void) { return csystem_stop != 0; }

int CSystem_stop_signal(void) { return (int)csystem_stop; }

int CSystem_die_with_parent(int sig, int32_t expected_parent) {
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, sig);
#endif
    if (expected_parent > 0 && getppid() != expected_parent) {
        return 0;
    }
    return 1;
}
