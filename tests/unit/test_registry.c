/* SPDX-License-Identifier: MIT */
/* placeholder */
#include "testutil.h"

static void test_registry_placeholder(void **state)
{
	(void)state;
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_placeholder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
