using Supervisor.Proxy.Http2;
using Supervisor.Tests.Infrastructure;

namespace Supervisor.Tests.Unit;

/// <summary>The connection pool against a worker socket that is gone: every request learns it at once.</summary>
public sealed class WorkerConnectionPoolTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sup-pool-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Requests_to_a_worker_whose_socket_is_gone_all_fail_at_once_as_never_sent()
    {
        // A connection attempt that fails at once completes before its waiters have parked: none may be left waiting.
        var pool = new WorkerConnectionPool("w9-9", Path.Combine(_directory, "gone.sock"), _ => { });

        var attempts = Enumerable.Range(0, 50).Select(_ => pool.StartAsync(new WorkerStream(isHeadRequest: false), SessionHarness.RequestBlock, 100, CancellationToken.None).AsTask()).ToArray();
        var outcome = await Task.WhenAll(attempts.Select(async attempt =>
        {
            try
            {
                await attempt.WaitAsync(TimeSpan.FromSeconds(10));
                return "started";
            }
            catch (RequestNotSentException exception)
            {
                return exception.WorkerUnreachable ? "unreachable" : "not sent";
            }
        }));

        Assert.All(outcome, result => Assert.Equal("unreachable", result));
    }
}
