// Guard for Go's signal handlers against the CUDA execution provider of
// ONNX Runtime, which installs handlers without SA_ONSTACK (see signals.go).

#ifndef SRTOOL_ORT_SIGNALS_H
#define SRTOOL_ORT_SIGNALS_H

// srtool_save_signals records the handler of every signal; call it before
// any ONNX Runtime code runs, while the handlers are Go's.
void srtool_save_signals(void);

// srtool_fix_signals puts back the saved handler of every signal whose
// current handler was installed without SA_ONSTACK and returns how many it
// restored.
int srtool_fix_signals(void);

// For tests: whether sig's handler has SA_ONSTACK (1, 0, or -1 on error),
// and a way to install a foreign handler without it (0 on success).
int srtool_signal_onstack(int sig);
int srtool_install_foreign(int sig);

#endif
