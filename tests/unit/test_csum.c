// SPDX-License-Identifier: MIT
/* The Internet checksum (common/util.c), as the restore's TCP segments use it. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdint.h>

#include "common/util.h"

Test(csum, rfc1071_example)
{
	/* RFC 1071 section 3: the sum of these words is 0xddf2 */
	const uint8_t b[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	cr_assert_eq(ntohs(inet_csum_fold(inet_csum_add(0, b, sizeof(b)))), 0x220d);
}

Test(csum, odd_length_pads_a_zero)
{
	const uint8_t odd[] = { 0x12, 0x34, 0x56 }, even[] = { 0x12, 0x34, 0x56, 0x00 };

	cr_assert_eq(inet_csum_add(0, odd, 3), inet_csum_add(0, even, 4));
	cr_assert_eq(inet_csum_add(0, odd, 3), 0x1234 + 0x5600);
}

Test(csum, carries_fold_back)
{
	const uint8_t b[] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x02 };

	/* 0xffff + 0xffff + 0x0002 = 0x20000 -> 0x0002 after folding: ~ = 0xfffd */
	cr_assert_eq(ntohs(inet_csum_fold(inet_csum_add(0, b, sizeof(b)))), 0xfffd);
}

Test(csum, a_segment_with_its_checksum_sums_to_zero)
{
	/* 10.0.0.2:4000 -> 10.0.0.1:80, FIN|ACK, as tcp_inject builds it */
	uint8_t src[4] = { 10, 0, 0, 2 }, dst[4] = { 10, 0, 0, 1 };
	uint8_t th[20] = { 0x0f, 0xa0, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78,
			   0x9a, 0xbc, 0xde, 0xf0, 0x50, 0x11, 0x01, 0xf5 };
	uint32_t pseudo = inet_csum_add(inet_csum_add(0, src, 4), dst, 4) + 6 + sizeof(th);
	uint16_t c = inet_csum_fold(inet_csum_add(pseudo, th, sizeof(th)));

	memcpy(th + 16, &c, 2);
	/* the receiver's check: everything, the checksum included, folds to 0 */
	cr_assert_eq(inet_csum_fold(inet_csum_add(pseudo, th, sizeof(th))), 0);
	cr_assert_neq(c, 0);
}
