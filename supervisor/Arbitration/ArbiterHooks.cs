using Supervisor.Configuration;

namespace Supervisor.Arbitration;

/// <summary>What the arbiter asks of the rest of the supervisor, without knowing how it is done.</summary>
/// <param name="ReloadConfiguration">Reads the configuration again for a reload (given the running one); throws <see cref="Cli.UsageException"/> when it is bad.</param>
/// <param name="ApplyConfiguration">Called when a reloaded configuration takes over: the request path and the logs follow it.</param>
/// <param name="ReopenLogs">SIGUSR1 (and SIGHUP): reopen the log files, for rotation.</param>
/// <param name="PrepareUpgrade">SIGUSR2: what to hand a new supervisor (the listening sockets, the command socket).</param>
/// <param name="SendToWorker">Sends a worker a one-line message over its control connection (--balancer kernel and handoff: accept, drain).</param>
/// <param name="RotationChanged">The workers in rotation, each time they change (--balancer handoff deals connections to them).</param>
/// <param name="FirstGenerationReady">Every worker of the first generation is ready: a supervisor started by an upgrade starts serving.</param>
internal sealed record ArbiterHooks(
    Func<LoadedConfiguration, LoadedConfiguration> ReloadConfiguration,
    Action<LoadedConfiguration> ApplyConfiguration,
    Action ReopenLogs,
    Func<UpgradeHandover> PrepareUpgrade,
    Action<string, string> SendToWorker,
    Action<IReadOnlyCollection<string>> RotationChanged,
    Action FirstGenerationReady);
