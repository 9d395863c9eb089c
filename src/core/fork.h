/*
 * fork.h — pthread_atfork handlers for every live pool (core/fork.c).
 */
#ifndef ZP_FORK_H
#define ZP_FORK_H

/* Installs the handlers once per process (before the first pool). */
void zp__fork_handlers_install(void);

#endif /* ZP_FORK_H */
