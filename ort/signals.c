//go:build cgo

#include <signal.h>
#include <string.h>

#include "signals.h"

#ifndef NSIG
#define NSIG 65
#endif

// The Go runtime's signal handlers, saved before ONNX Runtime is loaded.
static struct sigaction srtool_saved[NSIG];
static int srtool_saved_ok[NSIG];

void srtool_save_signals(void) {
	for (int s = 1; s < NSIG; s++) {
		srtool_saved_ok[s] = sigaction(s, NULL, &srtool_saved[s]) == 0;
	}
}

// The CUDA execution provider installs handlers without SA_ONSTACK; Go then
// dies with "non-Go code set up signal handler without SA_ONSTACK flag" on
// Ctrl-C.
int srtool_fix_signals(void) {
	int fixed = 0;
	for (int s = 1; s < NSIG; s++) {
		struct sigaction cur;
		if (!srtool_saved_ok[s] || sigaction(s, NULL, &cur) != 0) continue;
		if (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN) continue;
		if (cur.sa_flags & SA_ONSTACK) continue;
		if (sigaction(s, &srtool_saved[s], NULL) == 0) fixed++;
	}
	return fixed;
}

int srtool_signal_onstack(int sig) {
	struct sigaction cur;
	if (sigaction(sig, NULL, &cur) != 0) return -1;
	return (cur.sa_flags & SA_ONSTACK) != 0;
}

static void srtool_foreign_handler(int sig) { (void)sig; }

int srtool_install_foreign(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = srtool_foreign_handler;
	return sigaction(sig, &sa, NULL);
}
