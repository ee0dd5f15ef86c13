/* SPDX-License-Identifier: MIT */
/*
 * repl_inject: publish a damaged copy of the last delta of ROOT on the
 * replication stream, as a faulty or hostile publisher would, for
 * tests/shell/test_repl.sh: byte OFFSET of the message is flipped (or,
 * with OFFSET -1, the message is cut in half). Uses libnats directly.
 *
 *   repl_inject URL STREAM ROOT OFFSET
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

int main(int argc, char **argv)
{
	char subj[256], id[64];
	natsConnection *nc = NULL;
	natsMsg *m = NULL;
	jsCtx *js = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode je = 0;
	natsStatus s;
	unsigned char *p;
	long off;
	int len;

	if (argc != 5) {
		fprintf(stderr, "usage: repl_inject URL STREAM ROOT OFFSET\n");
		return 2;
	}
	off = strtol(argv[4], NULL, 10);
	snprintf(subj, sizeof(subj), "%s.%s.v", argv[2], argv[3]);
	s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_GetLastMsg(&m, js, argv[2], subj, NULL, &je);
	if (s != NATS_OK) {
		fprintf(stderr, "repl_inject: %s\n", natsStatus_GetText(s));
		return 2;
	}
	len = natsMsg_GetDataLength(m);
	p = malloc((size_t)len);
	if (!p)
		return 2;
	memcpy(p, natsMsg_GetData(m), (size_t)len);
	if (off < 0)
		len /= 2;
	else
		p[off % len] ^= 0x40;
	jsPubOptions_Init(&po);
	snprintf(id, sizeof(id), "inject-%ld-%d", off, len);
	po.MsgId = id;
	s = js_Publish(&pa, js, subj, p, len, &po, &je);
	if (s != NATS_OK) {
		fprintf(stderr, "repl_inject: publish: %s\n",
			natsStatus_GetText(s));
		return 2;
	}
	printf("injected a damaged message of %d bytes on %s\n", len, subj);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
	free(p);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}
