using Supervisor.Arbitration;

namespace Supervisor.Tests.Unit;

public sealed class RespawnBackoffTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(4, 4)]
    [InlineData(6, 16)]
    public void Failures_in_a_row_double_the_wait(int failures, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), RespawnBackoff.Delay(failures));

    [Theory]
    [InlineData(7)]
    [InlineData(50)]
    [InlineData(int.MaxValue)]
    public void The_wait_is_capped(int failures) =>
        Assert.Equal(RespawnBackoff.Cap, RespawnBackoff.Delay(failures));
}
