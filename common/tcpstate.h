/* SPDX-License-Identifier: MIT */
/*
 * The TCP states a connection travels in (docs/tcp.md): established, and
 * half-closed or closing with its FINs already on the wire. A FIN takes
 * one sequence number and no byte: a state with the peer's FIN received
 * has it in rcv_nxt, one with ours sent has it in write_seq.
 */
#ifndef FERRY_TCPSTATE_H
#define FERRY_TCPSTATE_H

#include <netinet/tcp.h>
#include <stdbool.h>

/* Ours sent (acknowledged in FIN_WAIT2 only): in write_seq. */
static inline bool tcp_state_fin_out(unsigned int st)
{
	return st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_LAST_ACK ||
	       st == TCP_CLOSING;
}

/* The peer's received (and acknowledged): in rcv_nxt. */
static inline bool tcp_state_fin_in(unsigned int st)
{
	return st == TCP_CLOSE_WAIT || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

/* Carried: established, and half-closed or closing with its FINs on the wire. */
static inline bool tcp_state_carried(unsigned int st)
{
	return st == TCP_ESTABLISHED || tcp_state_fin_out(st) || tcp_state_fin_in(st);
}

#endif
