/*
 * budget.h — byte budgets shared by pools: accounting (reserve before a
 * region is mapped, release after it is unmapped) and the queue of those
 * waiting for room.
 *
 * The budget knows nothing of pools. A pool attaches a gate: a word its hot
 * paths read. While anyone waits, every gate is closed (set to 0) so puts
 * take the slow path, which returns buffers to the depot and wakes the
 * head waiter; when the queue empties the gates reopen.
 */
#ifndef ZP_BUDGET_H
#define ZP_BUDGET_H

#include "policy/waitq.h"
#include "zeropool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct zp__gate {
    struct zp__gate *next;      /* the budget's gates (budget lock) */
    _Atomic uintptr_t *word;
    uintptr_t open;             /* the word's value while nobody waits */
} zp__gate;

/* Takes size bytes if they fit and no earlier waiter comes first (w: the
 * waiter the caller retries for, or NULL). */
bool zp__budget_reserve(zp_budget *b, size_t size, const zp__waiter *w);
/* Gives bytes back and wakes the head waiter. */
void zp__budget_release(zp_budget *b, size_t size);
size_t zp__budget_max(const zp_budget *b); /* SIZE_MAX for NULL */
bool zp__budget_has_waiters(const zp_budget *b);
/* The one way waiters hear that memory came back (to a depot or to the
 * budget): wakes the head so it retries. Cheap when nobody waits. */
void zp__budget_wake(zp_budget *b);
zp__waitq *zp__budget_waitq(zp_budget *b);
/* Outcome counters of zp_budget_read: a get that failed for lack of room
 * (ENOBUFS or ETIMEDOUT), and one that had to wait. */
void zp__budget_count_failure(zp_budget *b);
void zp__budget_count_wait(zp_budget *b);
/* Takes a reference and attaches the gate (closed at once if anyone
 * waits); detach drops both. */
void zp__budget_attach(zp_budget *b, zp__gate *g);
void zp__budget_detach(zp_budget *b, zp__gate *g);
void zp__budget_fork_child(zp_budget *b);

#endif /* ZP_BUDGET_H */
