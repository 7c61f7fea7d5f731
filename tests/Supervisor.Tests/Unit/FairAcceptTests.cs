using System.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Supervisor.Kernel;
using Supervisor.WorkerHost;

namespace Supervisor.Tests.Unit;

/// <summary>
/// Kernel mode's fair accept, with two workers' views of one real shared table (a memfd the supervisor's
/// <see cref="AcceptShares"/> made, each view mapped from its own descriptor as a worker maps it): a worker
/// holding more than its share waits while a peer in rotation holds fewer, wakes as soon as the peer
/// catches up, and does not wait for a peer that is out of rotation or gone, nor long for one that takes nothing.
/// </summary>
public sealed class FairAcceptTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly AcceptShares _shares = AcceptShares.Create();
    private readonly int _entryA;
    private readonly int _entryB;
    private readonly FairAccept _a;
    private readonly FairAccept _b;
    private readonly List<CancellationTokenSource> _connections = [];

    public FairAcceptTests()
    {
        _entryA = _shares.Take()!.Value;
        _entryB = _shares.Take()!.Value;
        _a = Attach(_entryA);
        _b = Attach(_entryB);
        _a.EnterRotation();
        _b.EnterRotation();
    }

    public void Dispose()
    {
        _connections.ForEach(connection => connection.Dispose());
        _a.Dispose();
        _b.Dispose();
        _shares.Dispose();
    }

    [Fact]
    public async Task A_worker_two_connections_ahead_waits_until_its_peer_accepts_one()
    {
        Accept(_a, 2);
        // With no connection waiting, so that the stall limit does not end the wait (see the last test).
        var turn = _a.WaitForTurnAsync(() => false, CancellationToken.None).AsTask();
        await Task.Delay(200); // Nothing to await: the claim is that nothing happens before the peer accepts.
        Assert.False(turn.IsCompleted, "the worker holding 2 accepted while its peer in rotation held none");

        Accept(_b, 1);
        await turn.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_worker_whose_own_connections_close_takes_its_turn_again()
    {
        var connections = Accept(_a, 2);
        var turn = _a.WaitForTurnAsync(() => false, CancellationToken.None).AsTask();
        await Task.Delay(200); // As above.
        Assert.False(turn.IsCompleted, "the worker holding 2 would take the next connection while its peer in rotation held none");

        await connections[0].CancelAsync(); // Kestrel's ConnectionClosed: 1 left, within the allowance.
        await turn.WaitAsync(Bound);
    }

    [Fact]
    public void Within_the_allowance_or_with_the_peer_out_of_rotation_a_worker_accepts_at_once()
    {
        Accept(_a, 1);
        Assert.True(TakesTurnAtOnce(_a), "one connection ahead is within the allowance");

        Accept(_a, 5);
        _b.LeaveRotation(); // Draining, or stopped: it takes no more connections, so none waits for it.
        Assert.True(TakesTurnAtOnce(_a), "waited for a peer out of rotation");

        _b.EnterRotation();
        _shares.Release(_entryB); // Its process exited: the supervisor zeroes its entry.
        Assert.True(TakesTurnAtOnce(_a), "waited for a peer whose process is gone");
    }

    [Fact]
    public async Task For_a_peer_that_takes_nothing_while_connections_wait_the_allowance_doubles_once_per_stall_limit_until_it_accepts_again()
    {
        Accept(_a, 2);
        await AssertTurnComesAfterAStallAsync("2 ahead of a peer holding none: the allowance of 1 becomes 2");

        // One stall grants one doubling, not the rest of a burst: 3 ahead waits out another stall limit.
        Accept(_a, 1);
        await AssertTurnComesAfterAStallAsync("3 ahead: the allowance of 2 becomes 4");
        Accept(_a, 1);
        Assert.True(TakesTurnAtOnce(_a), "4 ahead is within the allowance of 4");

        // It accepts again: the allowance for it is 1 again.
        Accept(_b, 1);
        var turn = _a.WaitForTurnAsync(() => true, CancellationToken.None).AsTask();
        Assert.False(turn.IsCompleted, "a peer that accepts again kept the doubled allowance");
        Accept(_b, 2); // 4 against 3: within the allowance of 1.
        await turn.WaitAsync(Bound);
    }

    private async Task AssertTurnComesAfterAStallAsync(string situation)
    {
        var waited = Stopwatch.StartNew();
        await _a.WaitForTurnAsync(() => true, CancellationToken.None).AsTask().WaitAsync(Bound);
        Assert.True(waited.Elapsed >= FairAccept.StallLimit,
            $"{situation}, yet the turn came after {waited.Elapsed.TotalMilliseconds:F1} ms, before the {FairAccept.StallLimit.TotalMilliseconds} ms stall limit");
    }

    // With a connection waiting.
    private static bool TakesTurnAtOnce(FairAccept worker) => worker.WaitForTurnAsync(() => true, CancellationToken.None).AsTask().IsCompleted;

    private List<CancellationTokenSource> Accept(FairAccept worker, int count)
    {
        var closes = Enumerable.Range(0, count).Select(_ => new CancellationTokenSource()).ToList();
        foreach (var close in closes)
        {
            worker.Count(new DefaultConnectionContext { ConnectionClosed = close.Token });
        }
        _connections.AddRange(closes);
        return closes;
    }

    private FairAccept Attach(int entry) =>
        new(AcceptShareTable.Attach(Native.Libc.DuplicateCloseOnExec(_shares.Descriptor))!, entry, TimeProvider.System);
}
