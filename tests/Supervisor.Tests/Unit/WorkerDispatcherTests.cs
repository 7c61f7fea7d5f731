using Supervisor.Configuration;
using Supervisor.Proxy;

namespace Supervisor.Tests.Unit;

/// <summary>
/// The dispatcher's choice for a request sent again (away from the worker that just failed it, while
/// another can take it), and its answer to requests waiting when the supervisor stops.
/// </summary>
public sealed class WorkerDispatcherTests
{
    [Fact]
    public async Task A_request_sent_again_goes_to_another_worker_while_one_can_take_it()
    {
        var dispatcher = Create(["w0-1", "w1-2"]);

        for (var i = 0; i < 20; i++)
        {
            var dispatch = await dispatcher.AcquireAsync(affinity: null, TimeSpan.FromSeconds(1), CancellationToken.None, avoid: "w0-1");
            Assert.Equal("w1-2", dispatch.Lease!.Worker.Key);
            dispatch.Lease.Release();
        }
    }

    [Fact]
    public async Task A_request_sent_again_goes_back_to_the_worker_it_failed_on_when_no_other_can_take_it()
    {
        var dispatcher = Create(["w0-1", "w1-2"]);
        Assert.True(dispatcher.MarkUnreachable("w1-2", "the test took it out"));

        var dispatch = await dispatcher.AcquireAsync(affinity: null, TimeSpan.FromSeconds(1), CancellationToken.None, avoid: "w0-1");

        Assert.Equal("w0-1", dispatch.Lease!.Worker.Key);
    }

    [Fact]
    public async Task Requests_waiting_for_a_worker_are_answered_at_once_when_the_supervisor_stops_without_its_queue()
    {
        var dispatcher = Create([]); // No worker ready: requests wait up to their no-worker limit.
        var waiting = Enumerable.Range(0, 5).Select(_ => dispatcher.AcquireAsync(affinity: null, TimeSpan.FromHours(1), CancellationToken.None).AsTask()).ToArray();

        dispatcher.Close();

        var outcomes = await Task.WhenAll(waiting).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(outcomes, dispatch => Assert.Equal(DispatchOutcome.Stopping, dispatch.Outcome));
        var late = await dispatcher.AcquireAsync(affinity: null, TimeSpan.FromHours(1), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DispatchOutcome.Stopping, late.Outcome);
    }

    private static WorkerDispatcher Create(string[] workers)
    {
        var options = new SupervisorOptions { App = new AppTarget("/srv/app/App.dll", IsDll: true, StartupHooksSupported: true), Workers = Math.Max(1, workers.Length) };
        var dispatcher = new WorkerDispatcher(new WorkerDestinations(options), _ => { }, (_, _) => { });
        dispatcher.Configure(workerConnections: 10, queueLimit: 10);
        foreach (var (key, pid) in workers.Select((key, index) => (key, index + 100)))
        {
            dispatcher.Track(key, pid, requestLimit: 0);
        }
        dispatcher.Publish(workers);
        return dispatcher;
    }
}
