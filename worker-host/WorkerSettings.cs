namespace Supervisor.WorkerHost;

/// <summary>What the supervisor told this worker through its environment.</summary>
internal sealed record WorkerSettings(
    string ControlSocketPath,
    string WorkerKey,
    string? ListenUrl,
    TimeSpan HeartbeatInterval,
    string? DataProtectionDirectory,
    string ApplicationName,
    HeaderAllowance? HeaderAllowance,
    KernelListening? Kernel,
    ClientServing? Serving)
{
    /// <summary>Null when the app runs on its own, outside a supervisor: the hook then does nothing.</summary>
    public static WorkerSettings? FromEnvironment()
    {
        var controlSocket = Environment.GetEnvironmentVariable(WorkerProtocol.ControlSocketVariable);
        var workerKey = Environment.GetEnvironmentVariable(WorkerProtocol.WorkerKeyVariable);
        if (string.IsNullOrEmpty(controlSocket) || string.IsNullOrEmpty(workerKey))
        {
            return null;
        }
        var heartbeatMilliseconds = int.TryParse(Environment.GetEnvironmentVariable(WorkerProtocol.HeartbeatIntervalVariable), out var ms) && ms > 0
            ? ms
            : WorkerProtocol.DefaultHeartbeatMilliseconds;
        var kernel = KernelListening.FromEnvironment();
        return new WorkerSettings(
            controlSocket,
            workerKey,
            Environment.GetEnvironmentVariable(WorkerProtocol.ListenUrlVariable),
            TimeSpan.FromMilliseconds(heartbeatMilliseconds),
            NullIfEmpty(Environment.GetEnvironmentVariable(WorkerProtocol.DataProtectionDirectoryVariable)),
            NullIfEmpty(Environment.GetEnvironmentVariable(WorkerProtocol.ApplicationNameVariable)) ?? workerKey,
            HeaderAllowance.Parse(Environment.GetEnvironmentVariable(WorkerProtocol.HeaderAllowanceVariable)),
            kernel,
            kernel is null ? null : ClientServing.FromEnvironment());
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
