import Foundation

/// The grammar of fleets: `targets:` at the top of a runbook and a step's `across:` (issue 22).
extension RunbookGrammar {
    static let prometheusTargets = ObjectShape("hosts named by a Prometheus query's label, asked once before the run", [
        field("url", .text, required: true, "Prometheus server base URL"),
        field("query", .text, required: true, "PromQL instant query; each series of its result vector names one host"),
        field("label", .text, required: true, "the label whose values are the host names, such as instance"),
    ])

    static let targetSet = ObjectShape("a set of hosts steps act on over SSH", exactlyOne: ["hosts", "inventory", "prometheus"], [
        field("hosts", .list(.text), "host names as ssh takes them (ssh_config aliases work); templates such as {{ params.host }} need within"),
        field("inventory", .text, "inventory file: one host a line with # comments, Ansible INI ([group] headers) or Ansible YAML (.yaml/.yml); relative to the runbook's folder"),
        field("prometheus", .object(prometheusTargets), "{ url, query, label }: the hosts are the values of label over the instant query's result, asked once before the run; needs within; an empty result, a query error or an unreachable server refuses the run"),
        field("group", .text, "with inventory: the Ansible group (children included; default all hosts)"),
        field("within", .text, "inventory file every resolved host must be listed in (required when hosts are templated or come from prometheus)"),
        field("user", .text, "remote user (ssh -l); default the ssh_config's"),
        field("max", .integer, "most hosts a step may act on: a larger resolved set refuses the run"),
    ])

    static let canary = ObjectShape("the first hosts go alone, then a check must pass before the rest start", [
        field("hosts", .integer, "how many hosts go first (default 1)"),
        field("verify", .text, "id of a check step run on each canary host once they are done; a failure stops the step"),
    ])

    static let across = ObjectShape("run this step on every host of a target set, with rate control", [
        field("targets", .text, required: true, "name of a set under targets:"),
        field("concurrency", .either([.integer, .text]), "hosts at once: a count or a share like 10% (default 1)"),
        field("max_errors", .either([.integer, .text]), "failed hosts tolerated, a count or a share; one more stops the step: no new host starts, hosts in flight finish (default 0)"),
        field("ramp", .bool, "batches of 1, 2, 4... up to concurrency, each after the last has finished"),
        field("canary", .object(canary)),
        field("pause", .duration, "wait between batches"),
    ])
}
