/*
 * fork.c — the fork contract (zeropool.h): the forking thread's pools stay
 * usable in the child.
 *
 * Before fork every lock a pool's slow paths take is held, in lock order,
 * so the child inherits consistent pools. In the child only the forking
 * thread exists: locks other threads may have held outside that set (stats,
 * decay, budget queues, the misuse handler's) are made afresh, waiters of
 * other threads are forgotten, and decay threads are gone. Buffers cached
 * by the other threads stay lost to the child (their counters still add
 * up).
 */
#include "core/fork.h"
#include "core/registry.h"
#include "debug/debug.h"
#include "policy/trim.h"

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    zp__registry_lock();
    for (zp_pool *p = zp__registry_pools(); p; p = p->live_next) {
        for (unsigned c = 0; c < p->nnodes * p->nclasses; c++)
            pthread_mutex_lock(&p->depot[c].lock);
        pthread_mutex_lock(&p->lock);
    }
}

static void fork_release(void)
{
    for (zp_pool *p = zp__registry_pools(); p; p = p->live_next) {
        pthread_mutex_unlock(&p->lock);
        for (unsigned c = p->nnodes * p->nclasses; c-- > 0;)
            pthread_mutex_unlock(&p->depot[c].lock);
    }
    zp__registry_unlock();
}

static void fork_child(void)
{
    for (zp_pool *p = zp__registry_pools(); p; p = p->live_next) {
        pthread_mutex_init(&p->stats_lock, NULL);
        zp__decay_fork_child(p);
        if (p->budget)
            zp__budget_fork_child(p->budget); /* shared budgets: twice is harmless */
    }
    zp__misuse_fork_child();
    fork_release();
}

static void atfork_register(void)
{
    (void)pthread_atfork(fork_prepare, fork_release, fork_child);
}

void zp__fork_handlers_install(void)
{
    pthread_once(&atfork_once, atfork_register);
}
