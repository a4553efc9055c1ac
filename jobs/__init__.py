"""Jobs: a consumer's computation under a grant, from admission to its result (任务).

    model             the job tables: jobs, tickets, payloads, results, federated rounds and trainings
    declarations      pure: a plan's fields, sizes and bounds checked against the assets' declarations
    admission         the decision point asked, quotas reserved, tickets signed, `job.admitted` recorded
    tickets           pure: the node protocol's signed tickets (issued by the exchange, verified by nodes)
    runner            the background pool that sends nodes their tickets, adds ciphertexts, records outcomes
    federated         rounds of a federated training: quorum, subsets, noise, `job.round`
    routes            submit, read and fetch results of jobs (HTTP)
    federated_routes  start, read and finish rounds of a federated training (HTTP)
"""
