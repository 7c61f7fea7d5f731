using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// A SignalR hub served unchanged by N workers, with the .NET SignalR client: each connection's negotiate
/// and transport requests reach the worker that holds it, on every transport and on both forwarding paths,
/// and a client whose worker dies reconnects to a live one.
/// </summary>
public sealed class SignalRTests(ITestOutputHelper output)
{
    private const int Connections = 50;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Reconnects at once, then backs off; long enough to outlast a reload's drain.
    private static readonly TimeSpan[] ReconnectDelays = [TimeSpan.Zero, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5)];

    [Theory]
    [InlineData("http2")]
    [InlineData("http1")]
    public async Task Every_connection_stays_on_the_worker_that_negotiated_it(string workerProtocol)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "4", "--worker-protocol", workerProtocol);
        foreach (var transport in new[] { HttpTransportType.WebSockets, HttpTransportType.ServerSentEvents, HttpTransportType.LongPolling })
        {
            // Fifty connections on four workers: without affinity about three in four negotiate with one
            // worker and open their transport at another, which answers 404 "No Connection with that ID".
            var connections = Enumerable.Range(0, Connections).Select(_ => Connect(supervisor, transport)).ToList();
            try
            {
                using var timeout = new CancellationTokenSource(Bound);
                await Task.WhenAll(connections.Select(connection => connection.StartAsync(timeout.Token)));
                var pids = new HashSet<int>();
                foreach (var connection in connections)
                {
                    var pid = await connection.InvokeAsync<int>("Pid", timeout.Token);
                    for (var call = 0; call < 3; call++)
                    {
                        Assert.Equal(pid, await connection.InvokeAsync<int>("Pid", timeout.Token));
                    }
                    Assert.Equal("José 日本", await connection.InvokeAsync<string>("Echo", "José 日本", timeout.Token));
                    pids.Add(pid);
                }
                // Only the connections are bound: their negotiations still went to the least busy workers.
                Assert.True(pids.Count > 1, $"all {Connections} {transport} connections were on one worker ({string.Join(", ", pids)})");
                output.WriteLine($"{transport}: {Connections} connections on workers {string.Join(", ", pids)}");
            }
            finally
            {
                foreach (var connection in connections)
                {
                    await connection.DisposeAsync();
                }
            }
        }
        Assert.DoesNotContain("[ERROR]", supervisor.Log);
    }

    [Fact]
    public async Task A_client_whose_worker_is_killed_reconnects_to_a_live_one()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2");
        var (connection, reconnected) = ConnectReconnecting(supervisor);
        await using var disposeConnection = connection;
        using var timeout = new CancellationTokenSource(Bound);
        await connection.StartAsync(timeout.Token);
        var before = await connection.InvokeAsync<int>("Pid", timeout.Token);

        Assert.True(Posix.Kill(before, Posix.SIGKILL));
        await reconnected.Task.WaitAsync(Bound);

        var after = await connection.InvokeAsync<int>("Pid", timeout.Token);
        Assert.NotEqual(before, after);
        Assert.Equal(after, await connection.InvokeAsync<int>("Pid", timeout.Token));
    }

    [Fact]
    public async Task Connections_a_reload_cuts_reconnect_to_the_new_workers_and_carry_on()
    {
        var artifacts = await Artifacts.GetAsync();
        // The old generation's connections are in flight: the drain waits --graceful-timeout for them, then the
        // old workers stop and their connections close, as Blazor circuits do on a deploy.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "4", "--graceful-timeout", "2");
        var connections = new List<(HubConnection Connection, TaskCompletionSource Reconnected)>();
        try
        {
            using var timeout = new CancellationTokenSource(Bound);
            for (var i = 0; i < 20; i++)
            {
                connections.Add(ConnectReconnecting(supervisor));
            }
            await Task.WhenAll(connections.Select(c => c.Connection.StartAsync(timeout.Token)));
            var before = new HashSet<int>(await Task.WhenAll(connections.Select(c => c.Connection.InvokeAsync<int>("Pid", timeout.Token))));
            var lines = supervisor.LineCount;

            supervisor.Signal(Posix.SIGHUP);
            await supervisor.WaitForLogAsync("Reload complete", TimeSpan.FromSeconds(60), lines);
            await Task.WhenAll(connections.Select(c => c.Reconnected.Task)).WaitAsync(TimeSpan.FromSeconds(60));

            using var after = new CancellationTokenSource(Bound);
            foreach (var (connection, _) in connections)
            {
                var pid = await connection.InvokeAsync<int>("Pid", after.Token);
                Assert.DoesNotContain(pid, before);
                Assert.Equal(pid, await connection.InvokeAsync<int>("Pid", after.Token));
                Assert.Equal("still here", await connection.InvokeAsync<string>("Echo", "still here", after.Token));
            }
        }
        finally
        {
            foreach (var (connection, _) in connections)
            {
                await connection.DisposeAsync();
            }
        }
    }

    // A WebSocket connection with automatic reconnect, and a task that completes when it has reconnected.
    private static (HubConnection Connection, TaskCompletionSource Reconnected) ConnectReconnecting(SupervisorProcess supervisor)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(supervisor.BaseAddress, "/hubs/worker"), HttpTransportType.WebSockets)
            .WithAutomaticReconnect(ReconnectDelays)
            .Build();
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Reconnected += _ =>
        {
            reconnected.TrySetResult();
            return Task.CompletedTask;
        };
        return (connection, reconnected);
    }

    private static HubConnection Connect(SupervisorProcess supervisor, HttpTransportType transport) =>
        new HubConnectionBuilder().WithUrl(new Uri(supervisor.BaseAddress, "/hubs/worker"), transport).Build();
}
