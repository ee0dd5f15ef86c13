/* SPDX-License-Identifier: MIT */
/*
 * Replay driver: links with one fuzz target (without libFuzzer) and runs
 * every input file through LLVMFuzzerTestOneInput once.
 *
 *   fuzz_X [FILE|DIR]...       replay those inputs (directories: every
 *                              regular file not starting with '.' or
 *                              "README")
 *   fuzz_X                     replay $srcdir/tests/fuzz/corpus/fuzz_X and
 *                              $srcdir/tests/fuzz/regress/fuzz_X ($srcdir
 *                              is set by `make check`; default ".")
 *   fuzz_X --make-seeds DIR    write the target's seed corpus into DIR
 *
 * Exit status: 0 when every input ran (a finding aborts the process), 1 if
 * no input was found or a file could not be read, 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f) {
		fprintf(stderr, "%s: cannot open %s: %s\n", fz_target_name,
			path, strerror(errno));
		return -1;
	}
	do {
		if (shg__grow(&buf, &cap, n + 65536, 1)) {
			free(buf);
			fclose(f);
			return -1;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	printf("%s: %s (%zu bytes)\n", fz_target_name, path, n);
	fflush(stdout);
	/* Copy to an exact-size block so that ASan sees overreads. */
	{
		uint8_t *exact = malloc(n ? n : 1);

		if (!exact) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, n);
		free(buf);
		(void)LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Inputs run from @path; -1 on a read error. */
static int run_path(const char *path, int must_exist)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL, full[4096];
	size_t n = 0, cap = 0, i;
	int total = 0, r;
	DIR *d;

	if (stat(path, &st) < 0) {
		if (!must_exist && errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: %s: %s\n", fz_target_name, path,
			strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strncmp(de->d_name, "README", 6))
			continue;
		if (shg__grow(&names, &cap, n + 1, sizeof(*names)))
			break;
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		r = stat(full, &st) == 0 && S_ISREG(st.st_mode) ?
			    run_file(full) :
			    0;
		if (r < 0)
			total = -1;
		else if (total >= 0)
			total += r;
		free(names[i]);
	}
	free(names);
	return total;
}

int main(int argc, char **argv)
{
	const char *srcdir = getenv("srcdir");
	char dir[4096];
	int i, n, total = 0, bad = 0;

	if (argc == 3 && !strcmp(argv[1], "--make-seeds")) {
		n = fz_make_seeds(argv[2]);
		if (n < 0) {
			fprintf(stderr, "%s: --make-seeds: %s\n",
				fz_target_name, strerror(-n));
			return 1;
		}
		return 0;
	}
	if (argc > 1 && argv[1][0] == '-') {
		fprintf(stderr, "usage: %s [--make-seeds DIR | FILE|DIR...]\n",
			argv[0]);
		return 2;
	}
	LLVMFuzzerInitialize(&argc, &argv);
	if (argc == 1) {
		if (!srcdir || !*srcdir)
			srcdir = ".";
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", srcdir,
			 fz_target_name);
		n = run_path(dir, 1);
		bad |= n < 0;
		total += n > 0 ? n : 0;
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/regress/%s", srcdir,
			 fz_target_name);
		n = run_path(dir, 0);
		bad |= n < 0;
		total += n > 0 ? n : 0;
	}
	for (i = 1; i < argc; i++) {
		n = run_path(argv[i], 1);
		bad |= n < 0;
		total += n > 0 ? n : 0;
	}
	printf("%s: %d input(s) replayed, no finding\n", fz_target_name, total);
	if (bad || total == 0) {
		fprintf(stderr, "%s: %s\n", fz_target_name,
			bad ? "some inputs could not be read" :
			      "no input found");
		return 1;
	}
	return 0;
}
