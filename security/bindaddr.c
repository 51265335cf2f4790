/* bindaddr.c — libifp_bindaddr.so, an LD_PRELOAD shim that keeps a program
 * from listening on every interface: a bind() to the wildcard address
 * (0.0.0.0 or ::) binds IFP_BIND_IPV4 or IFP_BIND_IPV6 instead (e.g.
 * 127.0.0.1 and ::1, or the host's address on the MPI network).  Binds to a
 * specific address pass through; with the variable unset or invalid the
 * bind is left as it was.
 *
 * Why: mpirun of Open MPI 4.1 binds its out-of-band listener to INADDR_ANY
 * and in6addr_any whatever oob_tcp_if_include says (that option only picks
 * the addresses it advertises; Open MPI 5's runtime fixed this).
 * deploy/local.sh preloads this into each group's mpirun so that nothing of
 * the deployment listens beyond the group's mpi_if (docs/SECURITY.md). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real;
    if (!real) real = (bind_fn)dlsym(RTLD_NEXT, "bind");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, addr, sizeof in);
        const char *want = getenv("IFP_BIND_IPV4");
        if (in.sin_addr.s_addr == htonl(INADDR_ANY) && want && inet_pton(AF_INET, want, &in.sin_addr) == 1)
            return real(fd, (const struct sockaddr *)&in, sizeof in);
    } else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, addr, sizeof in6);
        const char *want = getenv("IFP_BIND_IPV6");
        if (!memcmp(&in6.sin6_addr, &in6addr_any, sizeof in6addr_any) && want &&
            inet_pton(AF_INET6, want, &in6.sin6_addr) == 1)
            return real(fd, (const struct sockaddr *)&in6, sizeof in6);
    }
    return real(fd, addr, len);
}
