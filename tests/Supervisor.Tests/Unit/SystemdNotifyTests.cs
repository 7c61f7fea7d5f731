using Microsoft.Extensions.Hosting.Systemd;
using Supervisor.Control;

namespace Supervisor.Tests.Unit;

/// <summary>What systemd hears across a binary upgrade: the old supervisor names the new main pid and falls silent; the new one is silent until then.</summary>
public sealed class SystemdNotifyTests
{
    [Fact]
    public void The_old_supervisor_names_the_new_main_pid_and_then_says_nothing()
    {
        var systemd = new RecordingNotifier();
        var old = new SystemdNotify(systemd, TimeSpan.FromSeconds(1), _ => { });
        old.Ready("2/2 workers ready, generation 1");

        old.HandOver(4243);
        old.Stopping("stopping: requests in flight are finishing");
        old.Status("0/2 workers ready, generation 1");
        old.OnLoopTurned();

        Assert.Equal(["READY=1\nSTATUS=2/2 workers ready, generation 1", "MAINPID=4243"], systemd.Messages);
    }

    [Fact]
    public void The_new_supervisor_is_silent_until_it_has_taken_over_then_ready()
    {
        var systemd = new RecordingNotifier();
        var next = new SystemdNotify(systemd, TimeSpan.FromSeconds(1), _ => { }, upgrading: true);
        next.OnLoopTurned();
        next.Ready("2/2 workers ready, generation 1");
        next.Reloading("2/2 workers ready, generation 1; reloading: generation 2 booting");
        Assert.Empty(systemd.Messages);

        next.TookOver("2/2 workers ready, generation 1");
        next.Stopping("stopping");

        Assert.Equal(["READY=1\nSTATUS=2/2 workers ready, generation 1", "STOPPING=1\nSTATUS=stopping"], systemd.Messages);
    }

    [Fact]
    public void A_new_supervisor_that_fails_before_it_took_over_says_nothing_at_all()
    {
        var systemd = new RecordingNotifier();
        var next = new SystemdNotify(systemd, TimeSpan.FromSeconds(1), _ => { }, upgrading: true);

        next.Stopping("stopping");

        Assert.Empty(systemd.Messages);
    }

    private sealed class RecordingNotifier : ISystemdNotifier
    {
        public List<string> Messages { get; } = [];

        public bool IsEnabled => true;

        public void Notify(ServiceState state) => Messages.Add(state.ToString());
    }
}
