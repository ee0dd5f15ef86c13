/* SPDX-License-Identifier: MIT */
/*
 * shg-pin: hold the current version of a root for a while, from its own
 * process -- to see what a long-lived reader pins (shmctl readers, roots,
 * info) and to dump an older version (shmctl dump --version SEQ).
 *
 *   shg-pin SEGMENT ROOT SECONDS
 *
 * Prints "pinned ROOT version SEQ" once the pin is taken, then sleeps
 * SECONDS (or until SIGTERM/SIGINT) and unpins. Exit 0, or 2 on error.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <shmgraph.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "shg-pin: %s: %s\n", what, shg_strerror(err));
	return 2;
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_version_info vi;
	struct sigaction sa = { .sa_handler = on_signal };
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	struct shg_root *root;
	struct shg_pin *pin;
	struct shg_seg *seg;
	double secs, waited = 0;
	char *end;
	int err;

	if (argc != 4) {
		fprintf(stderr, "usage: shg-pin SEGMENT ROOT SECONDS\n");
		return 2;
	}
	secs = strtod(argv[3], &end);
	if (*end || end == argv[3] || secs < 0)
		return die(argv[3], -EINVAL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	err = shg_seg_open(argv[1], &o, &seg);
	if (err)
		return die(argv[1], err);
	err = shg_root_open(seg, argv[2], &root);
	if (err)
		return die(argv[2], err);
	err = shg_pin_current(root, &pin);
	if (err)
		return die("pin", err);
	err = shg_version_info(seg, shg_pin_version(pin), &vi);
	if (err)
		return die("version", err);
	printf("pinned %s version %" PRIu64 "\n", argv[2], vi.seq);
	fflush(stdout);
	while (!stop && waited < secs) {
		nanosleep(&ts, NULL);
		waited += 0.05;
	}
	shg_unpin(pin);
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}
