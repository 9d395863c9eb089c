/*
 * zpz: the ordered pipeline. The calling thread reads blocks into a ring of
 * slots; N worker threads transform them (compress, or inflate a member);
 * one writer thread writes them in the order they were read and frees the
 * slot. The ring is the bound on memory: at most `nslots` blocks exist at
 * once, whatever the input's length, so the reader waits for the writer
 * when the output is slower than the workers.
 *
 * One mutex guards the counters and every slot's state; the work itself
 * (read, transform, write) runs outside it. A block takes hundreds of
 * microseconds, so the lock is taken a few thousand times a second.
 *
 * Sequence numbers: slot i holds block seq where seq % nslots == i.
 *   nwritten <= nwork <= nread,  nread - nwritten <= nslots
 */
#include "zpz.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_QUEUED, SLOT_WORKING, SLOT_DONE };

typedef struct pipe {
    zpz_job *job;
    const zpz_stage *st;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;  /* workers: a block was queued, or the end */
    pthread_cond_t cv_write; /* writer: a block is done, or the end */
    pthread_cond_t cv_read;  /* reader: a slot was freed, or stop */
    zpz_slot *slots;
    unsigned nslots;
    uint64_t nread, nwork, nwritten;
    int eof;  /* the reader has queued its last block */
    int stop; /* an error: everyone leaves */
    int err;
} pipe_t;

static void pipe_stop(pipe_t *p, int err) /* mutex held */
{
    if (!p->stop) {
        p->stop = 1;
        p->err = err;
    }
    pthread_cond_broadcast(&p->cv_work);
    pthread_cond_broadcast(&p->cv_write);
    pthread_cond_broadcast(&p->cv_read);
}

static void *worker_main(void *arg)
{
    pipe_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->nwork == p->nread && !p->eof)
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop || p->nwork == p->nread)
            break; /* stopped, or the end with nothing left to take */
        zpz_slot *s = &p->slots[p->nwork % p->nslots];
        p->nwork++;
        s->state = SLOT_WORKING;
        pthread_mutex_unlock(&p->mu);

        int rc = p->st->work(p->st->ctx, s);

        pthread_mutex_lock(&p->mu);
        if (rc < 0) {
            pipe_stop(p, rc);
            break;
        }
        s->state = SLOT_DONE;
        if (s->seq == p->nwritten)
            pthread_cond_signal(&p->cv_write);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void *writer_main(void *arg)
{
    pipe_t *p = arg;
    zpz_job *job = p->job;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        zpz_slot *s = &p->slots[p->nwritten % p->nslots];
        while (!p->stop && !(p->nwritten < p->nread && s->state == SLOT_DONE) &&
               !(p->eof && p->nwritten == p->nread))
            pthread_cond_wait(&p->cv_write, &p->mu);
        if (p->stop || p->nwritten == p->nread)
            break;
        pthread_mutex_unlock(&p->mu);

        int rc = 0;
        if (job->out_fd >= 0)
            rc = zpz_write2(job->out_fd, s->hdr, s->hdr_len,
                            (const char *)s->out + s->out_off, s->out_len);
        if (rc < 0)
            zpz_fail(job, rc, "write error: %s", strerror(-rc));
        p->st->release(p->st->ctx, s);

        pthread_mutex_lock(&p->mu);
        if (rc < 0) {
            pipe_stop(p, rc);
            break;
        }
        s->state = SLOT_FREE;
        p->nwritten++;
        pthread_cond_signal(&p->cv_read);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int zpz_pipeline_run(zpz_job *job, const zpz_stage *st)
{
    pipe_t p;
    memset(&p, 0, sizeof p);
    p.job = job;
    p.st = st;
    p.nslots = (unsigned)job->threads * 2 + 2;
    p.slots = calloc(p.nslots, sizeof *p.slots); /* once per file */
    if (p.slots == NULL)
        return zpz_fail(job, -ENOMEM, "out of memory");
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv_work, NULL);
    pthread_cond_init(&p.cv_write, NULL);
    pthread_cond_init(&p.cv_read, NULL);

    pthread_t *tid = calloc((size_t)job->threads + 1, sizeof *tid);
    int started = 0, rc = 0;
    if (tid == NULL)
        rc = zpz_fail(job, -ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i <= job->threads; i++) {
        int e = pthread_create(&tid[i], NULL, i == 0 ? writer_main : worker_main, &p);
        if (e != 0)
            rc = zpz_fail(job, -e, "cannot start a thread: %s", strerror(e));
        else
            started++;
    }

    pthread_mutex_lock(&p.mu);
    if (rc < 0)
        pipe_stop(&p, rc);
    while (!p.stop) {
        while (!p.stop && p.nread - p.nwritten >= p.nslots)
            pthread_cond_wait(&p.cv_read, &p.mu);
        if (p.stop)
            break;
        zpz_slot *s = &p.slots[p.nread % p.nslots];
        pthread_mutex_unlock(&p.mu);

        int r = st->read(st->ctx, s); /* the slot is FREE: the reader's */

        pthread_mutex_lock(&p.mu);
        if (r < 0) {
            pipe_stop(&p, r);
            break;
        }
        if (r == 0) {
            p.eof = 1;
            pthread_cond_broadcast(&p.cv_work);
            pthread_cond_broadcast(&p.cv_write);
            break;
        }
        s->seq = p.nread++;
        s->state = SLOT_QUEUED;
        pthread_cond_signal(&p.cv_work);
    }
    pthread_mutex_unlock(&p.mu);

    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    free(tid);
    /* after an error, blocks may be left anywhere in the ring */
    for (unsigned i = 0; i < p.nslots; i++)
        st->release(st->ctx, &p.slots[i]);
    rc = p.stop ? p.err : 0;
    pthread_cond_destroy(&p.cv_read);
    pthread_cond_destroy(&p.cv_write);
    pthread_cond_destroy(&p.cv_work);
    pthread_mutex_destroy(&p.mu);
    free(p.slots);
    return rc;
}
