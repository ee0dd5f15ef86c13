/* SPDX-License-Identifier: MIT */
/* placeholder: module under construction */
#include "testutil.h"

static void test_vec_pending(void **state)
{
	(void)state;
	print_message("not written yet\n");
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vec_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
