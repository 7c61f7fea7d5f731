namespace Supervisor.Proxy;

/// <summary>
/// A host lifetime that does nothing. The default console lifetime would stop the web host on
/// SIGTERM/SIGINT by itself; here the supervisor's own signal handling decides when and how it stops.
/// </summary>
internal sealed class SupervisorHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
