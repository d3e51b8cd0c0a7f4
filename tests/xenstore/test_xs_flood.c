/* SPDX-License-Identifier: MIT */
/*
 * A client that registers a watch and never reads, while another client
 * writes many thousands of times. The daemon must keep answering, its RSS
 * must stay bounded (per-connection event queue cap, XSA-349), and the stuck
 * client, once it reads, must find a well-formed stream it can resume from.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#include "xs_harness.h"

#define WRITES 30000
#define RSS_LIMIT_KIB (64 * 1024)

static struct xsd_inst d;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: %s failed: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
			xsd_stop(&d);                                                 \
			exit(1);                                                      \
		}                                                                     \
	} while (0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	static char buf[XENSTORE_PAYLOAD_MAX + 64];
	char path[3100], longname[2901];
	struct xs_handle *w, *probe;
	struct xsd_sockmsg m;
	long rss0, rss1, peak = 0;
	unsigned long events = 0;
	double worst = 0;
	int stuck;

	if (!getenv("XENSTORED_BIN")) {
		fprintf(stderr, "XENSTORED_BIN not set\n");
		return 77;
	}
	CHECK(xsd_start(&d) == 0, "cannot start daemon");
	setenv("XENSTORED_PATH", d.sock, 1);
	w = xs_open(0);
	probe = xs_open(0);
	CHECK(w && probe, "xs_open: %s", strerror(errno));
	CHECK(xs_write(w, XBT_NULL, "/probe", "alive", 5), "write");

	stuck = raw_connect(d.sock);
	CHECK(stuck >= 0, "connect");
	CHECK(raw_send(stuck, XS_WATCH, 1, 0, "/flood\0tok", 11) == 0, "watch");
	rss0 = xsd_rss_kib(&d);
	CHECK(rss0 > 0, "no VmRSS");

	/* Long node names make each event ~2.9 KiB: without the caps, 30000 of them would be ~90 MiB. */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (int i = 0; i < WRITES; i++) {
		snprintf(path, sizeof(path), "/flood/%d/%s", i % 8, longname);
		CHECK(xs_write(w, XBT_NULL, path, "value", 5), "write %d: %s", i, strerror(errno));
		if (i % 1000 == 0) {
			unsigned int len;
			double t0 = now(), dt;
			char *v = xs_read(probe, XBT_NULL, "/probe", &len);

			dt = now() - t0;
			CHECK(v && strcmp(v, "alive") == 0, "probe read at %d", i);
			free(v);
			if (dt > worst)
				worst = dt;
			rss1 = xsd_rss_kib(&d);
			if (rss1 > peak)
				peak = rss1;
		}
	}
	rss1 = xsd_rss_kib(&d);
	if (rss1 > peak)
		peak = rss1;
	printf("RSS before %ld KiB, peak %ld KiB, after %ld KiB; slowest probe %.3f s\n", rss0,
	       peak, rss1, worst);
	CHECK(peak < RSS_LIMIT_KIB, "RSS %ld KiB", peak);
	CHECK(worst < 2.0, "probe took %.3f s", worst);
	CHECK(xsd_log_contains(&d, "dropping events"), "the event cap never triggered");

	/*
	 * Now the stuck client reads. Ask for something so we know where the
	 * backlog ends: the reply comes after every queued event.
	 */
	CHECK(raw_send(stuck, XS_READ, 77, 0, "/probe", 7) == 0, "send read");
	for (;;) {
		CHECK(raw_recv(stuck, &m, buf, sizeof(buf)) == 0, "recv after %lu events", events);
		if (m.type == XS_READ) {
			CHECK(m.req_id == 77 && m.len == 5 && memcmp(buf, "alive", 5) == 0,
			      "bad read reply");
			break;
		}
		if (m.type == XS_WATCH) {
			CHECK(m.req_id == 1, "watch ack");
			continue;
		}
		CHECK(m.type == XS_WATCH_EVENT, "unexpected type %u", m.type);
		CHECK(strncmp(buf, "/flood", 6) == 0, "event path %s", buf);
		CHECK(strcmp(buf + strlen(buf) + 1, "tok") == 0, "token");
		events++;
	}
	printf("stuck client got %lu of %d events\n", events, WRITES + 1);
	CHECK(events > 0 && events < WRITES, "%lu events: nothing dropped?", events);

	/* Recovered: new events flow again. */
	CHECK(xs_write(w, XBT_NULL, "/flood/last", "x", 1), "write");
	CHECK(raw_recv(stuck, &m, buf, sizeof(buf)) == 0, "event after recovery");
	CHECK(m.type == XS_WATCH_EVENT && strcmp(buf, "/flood/last") == 0, "got %s", buf);
	CHECK(xsd_log_contains(&d, "watch events were dropped"), "no drain log");

	close(stuck);
	xs_close(w);
	xs_close(probe);
	CHECK(xsd_stop(&d) == 0, "daemon exit status");
	return 0;
}
