/* SPDX-License-Identifier: MIT */
/*
 * Xen's public ring headers for user-space tests.  With the legacy
 * interface version (the default), io/ring.h maps xen_mb()/xen_rmb()/
 * xen_wmb() to mb()/rmb()/wmb(), which a user-space program must supply.
 */
#ifndef PVIO_TEST_XEN_RINGS_H
#define PVIO_TEST_XEN_RINGS_H

#include <stdint.h>
#include <string.h>

#ifndef mb
#define mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#include <xen/io/ring.h>
#include <xen/io/blkif.h>
#include <xen/io/netif.h>

#endif
