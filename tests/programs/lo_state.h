/* What the loopback interface shows of packet sockets' memberships:
 * its IFF_PROMISC and IFF_ALLMULTI flags, and whether a link address is
 * in its multicast list (/proc/net/dev_mcast). For the packet socket
 * test programs. */
#include <net/if.h>
#include <stdio.h>
#include <string.h>

static unsigned lo_flags(void) {
    unsigned v = 0;
    FILE *f = fopen("/sys/class/net/lo/flags", "r");
    if (f) {
        if (fscanf(f, "%x", &v) != 1) v = 0;
        fclose(f);
    }
    return v & (IFF_PROMISC | IFF_ALLMULTI);
}

/* Whether lo's multicast list holds `hex` (12 hex digits, no colons). */
static int listed(const char *hex) {
    char line[256];
    int found = 0;
    FILE *f = fopen("/proc/net/dev_mcast", "r");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, " lo ") && strstr(line, hex)) found = 1;
    if (f) fclose(f);
    return found;
}
