// Open-loop HTTP/1.1 load on new connections, for the cluster bench (bench/cluster.js).
//   loadgen PORT RATE SECONDS     starts a connection every 1/RATE s, whatever the server does
//                                 (no coordinated omission: latency counts from the scheduled
//                                 start), each: connect, "GET / ... Connection: close", read to
//                                 EOF; a 200 counts as ok, anything else as a failure by kind.
// Prints one JSON line: counts, failures, latency percentiles (µs), and the same for the way to
// the worker alone (scheduled start to the worker's 'connection' event, which the app sends back
// in an x-connection-ns header).
// (wrk does the closed-loop runs; it has no fixed rate. autocannon's new-connection mode was
// measured broken here: p50 438 ms on a trivial server.)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPEN 8192
#define TIMEOUT_NS (10LL * 1000000000LL)

struct conn {
  int fd;
  int64_t due; // scheduled start, ns
  int sent;
  int ok;
  size_t got;
  char head[256];
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static const char REQ[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
static long fail_connect, fail_reset, fail_status, fail_timeout, fail_overload, fail_other;

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: loadgen PORT RATE SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double rate = atof(argv[2]);
  double seconds = atof(argv[3]);
  long total = (long)(rate * seconds);
  int64_t *lat = calloc((size_t)total + 1, sizeof *lat);
  long nlat = 0;
  int64_t *to_worker = calloc((size_t)total + 1, sizeof *to_worker);
  struct conn *conns = calloc(MAX_OPEN, sizeof *conns);
  int open_count = 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int64_t period = (int64_t)(1e9 / rate);
  struct itimerspec its = {{period / 1000000000LL, period % 1000000000LL}, {0, 1}};
  timerfd_settime(tfd, 0, &its, NULL);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);

  int64_t start = now_ns();
  long started = 0, done = 0;
  struct epoll_event events[256];
  while (done < total) {
    int n = epoll_wait(ep, events, 256, 100);
    int64_t t = now_ns();
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == UINT64_MAX) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof ticks) != sizeof ticks) continue;
        while (started < total && start + started * period <= t) {
          int64_t due = start + started * period;
          started++;
          int slot = -1;
          for (int k = 0; k < MAX_OPEN && open_count < MAX_OPEN; k++) {
            int s = (int)((started + k) % MAX_OPEN);
            if (conns[s].fd == 0) {
              slot = s;
              break;
            }
          }
          if (slot < 0) {
            fail_overload++;
            done++;
            continue;
          }
          int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
            fail_connect++;
            done++;
            close(fd);
            continue;
          }
          conns[slot] = (struct conn){.fd = fd, .due = due};
          open_count++;
          struct epoll_event cev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)slot};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        if (started >= total) {
          struct itimerspec off = {{0, 0}, {0, 0}};
          timerfd_settime(tfd, 0, &off, NULL);
        }
        continue;
      }
      struct conn *c = &conns[events[i].data.u64];
      if (c->fd == 0) continue;
      int finished = 0;
      if (!c->sent && (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          if (err == ECONNREFUSED) fail_connect++;
          else if (err == ECONNRESET) fail_reset++;
          else fail_other++;
          finished = 1;
        } else if (write(c->fd, REQ, sizeof REQ - 1) != (ssize_t)(sizeof REQ - 1)) {
          fail_reset++;
          finished = 1;
        } else {
          c->sent = 1;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = events[i].data.u64};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
        }
      }
      if (!finished && c->sent && (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        char buf[4096];
        for (;;) {
          ssize_t r = read(c->fd, buf, sizeof buf);
          if (r > 0) {
            for (ssize_t k = 0; k < r && c->got < sizeof c->head - 1; k++) c->head[c->got++] = buf[k];
            continue;
          }
          if (r == 0) {
            c->ok = strncmp(c->head, "HTTP/1.1 200", 12) == 0;
            if (c->ok) {
              const char *h = strstr(c->head, "x-connection-ns: ");
              to_worker[nlat] = h ? atoll(h + 17) - c->due : 0;
              lat[nlat++] = t - c->due;
            }
            else if (c->got == 0) fail_reset++; // closed with no answer
            else fail_status++;
            finished = 1;
          } else if (errno != EAGAIN) {
            fail_reset++;
            finished = 1;
          }
          break;
        }
      }
      if (finished) {
        close(c->fd);
        c->fd = 0;
        open_count--;
        done++;
      }
    }
    // Give up on connections open too long (counted as timeouts).
    if (n == 0 || (t - start) % 1000000000LL < 1000000) {
      for (int s = 0; s < MAX_OPEN; s++) {
        if (conns[s].fd != 0 && t - conns[s].due > TIMEOUT_NS) {
          close(conns[s].fd);
          conns[s].fd = 0;
          open_count--;
          done++;
          fail_timeout++;
        }
      }
    }
  }
  int64_t elapsed = now_ns() - start;
  qsort(lat, (size_t)nlat, sizeof *lat, cmp64);
  qsort(to_worker, (size_t)nlat, sizeof *to_worker, cmp64);
#define AT(a, p) (nlat ? (a)[(long)((p) * (nlat - 1))] / 1000 : 0)
#define PCT(p) AT(lat, p)
  printf("{\"scheduled\":%ld,\"ok\":%ld,\"seconds\":%.3f,\"failures\":{\"connect\":%ld,\"reset\":%ld,\"status\":%ld,"
         "\"timeout\":%ld,\"overload\":%ld,\"other\":%ld},\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"max\":%lld,"
         "\"toWorkerP50\":%lld,\"toWorkerP99\":%lld}\n",
         total, nlat, elapsed / 1e9, fail_connect, fail_reset, fail_status, fail_timeout, fail_overload, fail_other,
         (long long)PCT(0.5), (long long)PCT(0.9), (long long)PCT(0.99), (long long)PCT(1.0),
         (long long)AT(to_worker, 0.5), (long long)AT(to_worker, 0.99));
  return 0;
}
