using Supervisor.Control;
using Supervisor.Tests.Infrastructure;

namespace Supervisor.Tests.Unit;

public sealed class PoolHealthTests
{
    [Fact]
    public void Live_while_the_loop_turns_and_not_once_it_has_been_silent_for_the_limit()
    {
        var time = new ManualTime();
        var health = new PoolHealth(time);
        time.Advance(PoolHealth.LiveWithin - TimeSpan.FromSeconds(1));
        Assert.Null(health.NotLive());
        health.LoopTurned();
        time.Advance(PoolHealth.LiveWithin);
        Assert.Equal("the arbiter's loop has not turned for 5 s", health.NotLive());
        health.LoopTurned();
        Assert.Null(health.NotLive());
    }

    [Fact]
    public void Ready_while_a_worker_is_in_rotation_and_never_again_once_stopping()
    {
        var health = new PoolHealth(new ManualTime());
        Assert.Equal("no worker is ready", health.NotReady());
        health.InRotation(2);
        Assert.Null(health.NotReady());
        health.Stopping();
        Assert.Equal("the supervisor is stopping", health.NotReady());
        health.InRotation(2);
        Assert.Equal("the supervisor is stopping", health.NotReady());
    }
}
