/*
 * connectors.h — the built-in connectors to external systems (layer: stage): kafka_source,
 * kafka_sink and postgres_sink. They live in the stage layer because they talk to Kafka and SQL,
 * which the operators layer may not see, and are added to the operator registry at run time.
 *
 * Thread-safety: nu_connectors_register() may be called from any thread, any number of times.
 */
#ifndef NU_STAGE_CONNECTORS_H
#define NU_STAGE_CONNECTORS_H

#include "nurion/operator.h"

extern const struct nu_operator nu_op_kafka_source;
extern const struct nu_operator nu_op_kafka_sink;
extern const struct nu_operator nu_op_postgres_sink;

/* Add the connectors to the operator registry (idempotent; process lifetime). Call before
 * parsing or running a job that names them. */
void nu_connectors_register(void);

#endif
