// Process plumbing Swift cannot express safely: async-signal-safe stop flags and the parent-death signal.
#ifndef CSYSTEM_H
#define CSYSTEM_H

#include <stdint.h>

/// Installs SIGTERM/SIGINT handlers that only set a flag (and SIGPIPE ignored).
void CSystem_install_stop_handlers(void);
/// Whether SIGTERM or SIGINT arrived since start (or since the last reset).
int CSystem_stop_requested(void);
/// Which signal arrived (0 when none).
int CSystem_stop_signal(void);
/// Asks the kernel to send `signal` to this process when its parent dies (Linux; no-op elsewhere).
/// Returns 0 when the parent is already gone (the caller should exit), 1 otherwise.
int CSystem_die_with_parent(int signal, int32_t expected_parent);

#endif
