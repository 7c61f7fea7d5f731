using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>SIGTTIN / SIGTTOU change the number of live workers, never below one.</summary>
public sealed class ScalingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Ttin_adds_a_worker_and_ttou_removes_one_but_never_the_last()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2");
        using var client = supervisor.CreateClient();

        supervisor.Signal(Posix.SIGTTIN);
        await supervisor.WaitForLogAsync(@"Worker 2 ready \(pid: \d+", SupervisorProcess.StartTimeout);
        var servedBy = new HashSet<int>();
        for (var i = 0; i < 300 && servedBy.Count < 3; i++)
        {
            servedBy.Add((await WhoAmI.GetAsync(client)).Pid);
        }
        Assert.Equal(3, servedBy.Count);
        Assert.Equal(3, ProcessTree.RunningChildren(supervisor.Pid));

        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Number of workers: 3 -> 2", TimeSpan.FromSeconds(5));
        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Number of workers: 2 -> 1", TimeSpan.FromSeconds(5));
        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Not removing the last worker", TimeSpan.FromSeconds(5));

        await Eventually.TrueAsync(() => ProcessTree.RunningChildren(supervisor.Pid) == 1, TimeSpan.FromSeconds(15), "one worker left");
        var last = await WhoAmI.GetAsync(client);
        Assert.Equal("0", last.WorkerId);
    }
}
