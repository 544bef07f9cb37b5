/* cmd_topics.c — `qbctl topics`: the topic registry (name, key, message
 * type, partitions, dead-letter topic) and, when the cluster answers, the
 * partitions it reports for each. `--names` prints base names only. */
#include <stdio.h>
#include <string.h>

#include "bus/qb_reader.h"
#include "bus/qb_topics.h"
#include "qbctl.h"

int qbctl_topics(int argc, char **argv) {
    int names_only = argc > 1 && strcmp(argv[1], "--names") == 0;
    char err[512];
    if (qb_topics_init(err, sizeof(err)) != QB_OK) {
        fprintf(stderr, "qbctl topics: %s\n", err);
        return 2;
    }
    if (names_only) {
        for (size_t i = 0; i < qb_topics_count(); i++) printf("%s\n", qb_topics_at(i)->base);
        return 0;
    }
    printf("%-20s %-8s %-22s %5s  %-24s %s\n", "TOPIC", "KEY", "MESSAGE", "PARTS", "DLQ",
           "BROKER");
    int reachable = 1;
    for (size_t i = 0; i < qb_topics_count(); i++) {
        const qb_topic_t *t = qb_topics_at(i);
        char broker[600] = "-";
        if (reachable) {
            int n = qb_bus_partition_count(t->name, 3000, err, sizeof(err));
            if (n >= 0) snprintf(broker, sizeof(broker), "%d partitions", n);
            else {
                snprintf(broker, sizeof(broker), "%s", err);
                if (strstr(err, "metadata for")) reachable = 0; /* don't wait per topic */
            }
        }
        printf("%-20s %-8s %-22s %5d  %-24s %s\n", t->name, t->key, t->msg_type,
               t->partitions, t->dlq, broker);
    }
    return 0;
}
