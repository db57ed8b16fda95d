/*
 * pause: the only program of the seaworthy-test/scratch image.
 *
 * The image has no shell and no other binaries, so this program is both
 * PID 1 and the whole "application":
 *
 *   - it forks one child that also just sleeps, so the container's process
 *     tree has depth 2 (PID 1 -> child);
 *   - once the child exists it prints "pause: ready" on stdout;
 *   - on SIGTERM or SIGINT it kills the child, reaps it and exits with 0;
 *   - otherwise it sleeps forever.
 *
 * Build (as `cargo xtask images` does): gcc -static -Os -s -o pause pause.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Set by the signal handlers; the main loop reacts to them. */
static volatile sig_atomic_t stop_requested = 0;
static volatile sig_atomic_t child_exited = 0;

static void on_stop(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void on_child(int signo)
{
    (void)signo;
    child_exited = 1;
}

/* The child sleeps until it is killed, or until its parent goes away. */
static void child_main(void)
{
    struct sigaction sa;
    sigset_t none;

    /* Die together with PID 1 even if that one is killed with SIGKILL. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Default dispositions and an empty mask: SIGTERM simply kills us. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (;;)
        pause();
}

/* Reaps every exited child (PID 1 also inherits orphans). */
static void reap_children(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(void)
{
    struct sigaction sa;
    sigset_t blocked, waitmask;
    pid_t child;

    /*
     * Block the signals we care about and only accept them inside
     * sigsuspend(), so that one arriving between the check of the flags
     * and the sleep cannot be lost.
     */
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGCHLD);

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_child;
    sigaction(SIGCHLD, &sa, NULL);

    child = fork();
    if (child < 0) {
        fprintf(stderr, "pause: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0)
        child_main();

    printf("pause: ready\n");
    fflush(stdout);

    while (!stop_requested) {
        sigsuspend(&waitmask);
        if (child_exited) {
            child_exited = 0;
            reap_children();
        }
    }

    printf("pause: stopping\n");
    fflush(stdout);
    kill(child, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    return 0;
}
