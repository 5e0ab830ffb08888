// The limit: the same workloads as bench/peer.js with blocking syscalls and no runtime.
// usage: peer CASE COUNT [ARG]; prints {"ops":N,"ns":N} for the timed part.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

static long long now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void readn(int fd, char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) die("read");
    buf += r, n -= (size_t)r;
  }
}

static void report(long long ops, long long ns) { printf("{\"ops\":%lld,\"ns\":%lld}\n", ops, ns); }

// COUNT messages of one byte with NFDS fds each; the child closes every fd it gets, counting
// them, then acks with the count (8 bytes) so the parent can report fds/s.
static void fdpass(long count, int nfds, int type) {
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  union { char buf[CMSG_SPACE(sizeof(int) * 253)]; struct cmsghdr align; } ctl;
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  struct msghdr m = {0};
  m.msg_iov = &iov, m.msg_iovlen = 1, m.msg_control = ctl.buf;
  if (fork() == 0) {
    long long got = 0;
    for (long i = 0; i < count; i++) {
      m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      if (recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC) != 1) die("recvmsg");
      struct cmsghdr *c = CMSG_FIRSTHDR(&m);
      if (!c) continue;
      int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int k = 0; k < n; k++) close(((int *)CMSG_DATA(c))[k]);
      got += n;
    }
    if (write(sv[1], &got, sizeof got) != sizeof got) die("write");
    _exit(0);
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  long long t0 = now();
  for (long i = 0; i < count; i++) {
    m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (int k = 0; k < nfds; k++) ((int *)CMSG_DATA(c))[k] = devnull;
    if (sendmsg(sv[0], &m, MSG_NOSIGNAL) != 1) die("sendmsg");
  }
  long long got;
  readn(sv[0], (char *)&got, sizeof got);
  long long ns = now() - t0;
  printf("{\"ops\":%ld,\"ns\":%lld,\"fds\":%lld}\n", count, ns, got);
  wait(NULL);
}

// The same workload, BATCH messages per recvmmsg/sendmmsg call: what a C program gains from
// batching (the kernel's per-message work stays).
#define BATCH 32
static void send_batches(int fd, struct mmsghdr *h, long count) {
  for (long i = 0; i < count;) {
    int want = count - i < BATCH ? (int)(count - i) : BATCH;
    int r = sendmmsg(fd, h, want, MSG_NOSIGNAL);
    if (r <= 0) die("sendmmsg");
    i += r;
  }
}
static void fdpass_mmsg(long count, int nfds, int type) {
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  static union { char buf[CMSG_SPACE(sizeof(int) * 253)]; struct cmsghdr align; } ctl[BATCH];
  static char bytes[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr h[BATCH];
  for (int k = 0; k < BATCH; k++) {
    iov[k].iov_base = &bytes[k], iov[k].iov_len = 1;
    h[k].msg_hdr.msg_iov = &iov[k], h[k].msg_hdr.msg_iovlen = 1, h[k].msg_hdr.msg_control = ctl[k].buf;
  }
  if (fork() == 0) {
    long long got = 0;
    for (long i = 0; i < count;) {
      for (int k = 0; k < BATCH; k++) h[k].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      int r = recvmmsg(sv[1], h, BATCH, MSG_CMSG_CLOEXEC | MSG_WAITFORONE, NULL);
      if (r <= 0) die("recvmmsg");
      for (int k = 0; k < r; k++) {
        struct cmsghdr *c = CMSG_FIRSTHDR(&h[k].msg_hdr);
        if (!c) continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int j = 0; j < n; j++) close(((int *)CMSG_DATA(c))[j]);
        got += n;
      }
      i += r;
    }
    if (write(sv[1], &got, sizeof got) != sizeof got) die("write");
    _exit(0);
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (int k = 0; k < BATCH; k++) {
    bytes[k] = 'x';
    h[k].msg_hdr.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&h[k].msg_hdr);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (int j = 0; j < nfds; j++) ((int *)CMSG_DATA(c))[j] = devnull;
  }
  long long t0 = now();
  send_batches(sv[0], h, count);
  long long got;
  readn(sv[0], (char *)&got, sizeof got);
  long long ns = now() - t0;
  printf("{\"ops\":%ld,\"ns\":%lld,\"fds\":%lld}\n", count, ns, got);
  wait(NULL);
}

// COUNT datagrams of 64 bytes, parent -> child over a SOCK_DGRAM socketpair (blocking: the
// sender waits while the receiver's queue is full); the child acks with the count it got.
static void dgram(long count) {
  int sv[2];
  char buf[64] = {0};
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  if (fork() == 0) {
    long long got = 0;
    for (long i = 0; i < count; i++) {
      if (recv(sv[1], buf, sizeof buf, 0) != 64) die("recv");
      got++;
    }
    if (send(sv[1], &got, sizeof got, 0) != sizeof got) die("send");
    _exit(0);
  }
  long long t0 = now();
  for (long i = 0; i < count; i++)
    if (send(sv[0], buf, 64, MSG_NOSIGNAL) != 64) die("send");
  long long got;
  if (recv(sv[0], &got, sizeof got, 0) != sizeof got) die("recv");
  report(count, now() - t0);
  wait(NULL);
}

// The same over named sockets (a bound receiver, a sender connected to its abstract name), as
// createSocket's are: the kernel then bounds the receiver's queue (net.unix.max_dgram_qlen).
static void dgram_named(long count) {
  int ack[2];
  char buf[64] = {0};
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "net-unix-bench-c-%d", getpid()) + 1;
  socklen_t alen = offsetof(struct sockaddr_un, sun_path) + len;
  int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (rx < 0 || bind(rx, (struct sockaddr *)&a, alen) || pipe(ack)) die("bind");
  if (fork() == 0) {
    long long got = 0;
    for (long i = 0; i < count; i++) {
      if (recv(rx, buf, sizeof buf, 0) != 64) die("recv");
      got++;
    }
    if (write(ack[1], &got, sizeof got) != sizeof got) die("write");
    _exit(0);
  }
  int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (tx < 0 || connect(tx, (struct sockaddr *)&a, alen)) die("connect");
  long long t0 = now();
  for (long i = 0; i < count; i++)
    if (send(tx, buf, 64, MSG_NOSIGNAL) != 64) die("send");
  long long got;
  readn(ack[0], (char *)&got, sizeof got);
  report(count, now() - t0);
  wait(NULL);
}

// The same, BATCH datagrams per sendmmsg/recvmmsg call.
static void dgram_mmsg(long count) {
  int sv[2];
  static char bufs[BATCH][64];
  static struct iovec iov[BATCH];
  static struct mmsghdr h[BATCH];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  for (int k = 0; k < BATCH; k++) {
    iov[k].iov_base = bufs[k], iov[k].iov_len = 64;
    h[k].msg_hdr.msg_iov = &iov[k], h[k].msg_hdr.msg_iovlen = 1;
  }
  if (fork() == 0) {
    long long got = 0;
    while (got < count) {
      int r = recvmmsg(sv[1], h, BATCH, MSG_WAITFORONE, NULL);
      if (r <= 0) die("recvmmsg");
      got += r;
    }
    if (send(sv[1], &got, sizeof got, 0) != sizeof got) die("send");
    _exit(0);
  }
  long long t0 = now();
  send_batches(sv[0], h, count);
  long long got;
  if (recv(sv[0], &got, sizeof got, 0) != sizeof got) die("recv");
  report(count, now() - t0);
  wait(NULL);
}

static void pingpong(long count) {
  int sv[2];
  char buf[64] = {0};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  if (fork() == 0) {
    for (long i = 0; i < count; i++) {
      readn(sv[1], buf, 64);
      if (write(sv[1], buf, 64) != 64) die("write");
    }
    _exit(0);
  }
  long long t0 = now();
  for (long i = 0; i < count; i++) {
    if (write(sv[0], buf, 64) != 64) die("write");
    readn(sv[0], buf, 64);
  }
  report(count, now() - t0);
  wait(NULL);
}

static void bulk(long mib) {
  int sv[2];
  static char buf[65536];
  long long total = (long long)mib << 20;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair");
  if (fork() == 0) {
    for (long long got = 0; got < total;) {
      ssize_t r = read(sv[1], buf, sizeof buf);
      if (r <= 0) die("read");
      got += r;
    }
    if (write(sv[1], "k", 1) != 1) die("write");
    _exit(0);
  }
  long long t0 = now();
  for (long long sent = 0; sent < total;) {
    ssize_t r = write(sv[0], buf, sizeof buf);
    if (r <= 0) die("write");
    sent += r;
  }
  readn(sv[0], buf, 1);
  report(total, now() - t0);
  wait(NULL);
}

static void connects(long count, const char *name) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t len = strlen(name + 1) + 1; // abstract: a leading NUL, then the name
  memcpy(a.sun_path, name, len);
  a.sun_path[0] = 0;
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (bind(l, (struct sockaddr *)&a, alen) || listen(l, 511)) die("listen");
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the bench, even if it is killed
    for (;;) {
      int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
      if (c < 0) die("accept");
      close(c);
    }
  }
  close(l);
  long long t0 = now();
  for (long i = 0; i < count; i++) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(s, (struct sockaddr *)&a, alen)) die("connect");
    close(s);
  }
  report(count, now() - t0);
  kill(child, SIGKILL);
  wait(NULL);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  long count = atol(argv[2]);
  if (!strcmp(argv[1], "fdpass")) fdpass(count, atoi(argv[3]), argc > 4 && !strcmp(argv[4], "seqpacket") ? SOCK_SEQPACKET : SOCK_STREAM);
  else if (!strcmp(argv[1], "fdpass-mmsg")) fdpass_mmsg(count, atoi(argv[3]), argc > 4 && !strcmp(argv[4], "seqpacket") ? SOCK_SEQPACKET : SOCK_STREAM);
  else if (!strcmp(argv[1], "dgram-mmsg")) dgram_mmsg(count);
  else if (!strcmp(argv[1], "dgram-named")) dgram_named(count);
  else if (!strcmp(argv[1], "dgram")) dgram(count);
  else if (!strcmp(argv[1], "pingpong")) pingpong(count);
  else if (!strcmp(argv[1], "bulk")) bulk(count);
  else if (!strcmp(argv[1], "connect")) connects(count, argv[3]);
  else return 2;
  return 0;
}
