using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Supervisor.WorkerHost;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// How the no-hop modes share new connections between the workers. Handoff: the supervisor deals each to
/// the worker with the fewest open ones. Kernel: the workers accept on one shared socket, and a worker
/// holding more than one connection more than a peer leaves new ones to it (FairAccept). Either way a burst
/// of connections opened at once (as a load balancer's pool or wrk opens them) is shared evenly, not taken
/// mostly by whichever worker accepts first, as the kernel alone shares it (1 and 39, 2 and 38 measured).
/// </summary>
public sealed class ConnectionSharingTests(ITestOutputHelper output)
{
    private const int Connections = 40;

    [Theory]
    [InlineData(ForwardingPath.Handoff)] // Dealt one by one: exactly even.
    [InlineData(ForwardingPath.Kernel)] // Two counts may differ by the allowance + 1 (accepts run side by side).
    public async Task A_burst_of_new_connections_is_shared_evenly_and_the_places_of_closed_ones_go_back_to_their_worker(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", .. path.Arguments()]);
        var clients = Enumerable.Range(0, Connections).Select(_ => supervisor.CreateClient()).ToList();
        try
        {
            // Every client opens its connection at the same moment, and keeps it.
            var servedBy = await Task.WhenAll(clients.Select(async client => (await WhoAmI.GetAsync(client)).Pid));
            var shares = servedBy.GroupBy(pid => pid).ToDictionary(group => group.Key, group => group.Count());
            output.WriteLine($"{Connections} connections at once: {string.Join(", ", shares.Select(share => $"pid {share.Key}: {share.Value}"))}");
            Assert.Equal(2, shares.Count);
            var difference = Math.Abs(shares.Values.First() - shares.Values.Last());
            if (path == ForwardingPath.Handoff)
            {
                Assert.Equal(0, difference);
            }
            else if (difference > FairAccept.Allowance + 1)
            {
                // Allowed only by a stall the workers logged (a peer cold or short of CPU took nothing for a
                // while): each doubles the allowance once. Before 2026-12-05 one stall let the other worker
                // take the rest of the burst (35/5 and 37/3 in CI's Debug build).
                await Eventually.ValueAsync(() => LoggedAllowance(supervisor.Log), allowance => difference <= allowance + 1, TimeSpan.FromSeconds(10),
                    $"the workers' counts differ by {difference}, more than the allowance the workers logged (see the log), + 1");
            }

            // Each kept connection stays with its worker.
            var again = await Task.WhenAll(clients.Select(async client => (await WhoAmI.GetAsync(client)).Pid));
            Assert.Equal(servedBy, again);

            // Connections that close free their worker's places: once the closes are counted (handoff: the
            // worker reports them; kernel: it counts them in the shared table), new connections go to it until
            // it has as many as the other. (Were the closes not counted, new connections would alternate.)
            var first = servedBy[0];
            foreach (var index in Enumerable.Range(0, Connections).Where(index => servedBy[index] == first).Reverse())
            {
                clients[index].Dispose();
                clients.RemoveAt(index);
            }
            var burst = await Eventually.ValueAsync(async () =>
            {
                var newcomers = Enumerable.Range(0, 10).Select(_ => supervisor.CreateClient()).ToList();
                var pids = await Task.WhenAll(newcomers.Select(async client => (await WhoAmI.GetAsync(client)).Pid));
                newcomers.ForEach(client => client.Dispose());
                return string.Join(", ", pids); // As the failure message shows them.
            }, pids => pids.Split(", ").All(pid => pid == $"{first}"), TimeSpan.FromSeconds(10), $"10 new connections all go to worker {first}, whose connections closed");
            output.WriteLine($"after worker {first}'s connections closed, 10 new ones went to: {burst}");
        }
        finally
        {
            clients.ForEach(client => client.Dispose());
        }
    }

    // The largest allowance a stall granted, as the workers logged it (FairAccept.Stall); the base one if none.
    private static int LoggedAllowance(string log) =>
        Regex.Matches(log, @"fair accept: .* may now hold (\d+) more").Select(match => int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture))
            .Append(FairAccept.Allowance).Max();

    [Fact]
    public async Task In_kernel_mode_a_frozen_worker_is_passed_over_and_new_connections_go_to_the_other_at_once()
    {
        var artifacts = await Artifacts.GetAsync();
        // A --timeout long enough that the frozen worker is not killed during the test: the other must
        // not wait for it (FairAccept passes over a peer that takes nothing while connections wait).
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--timeout", "60", "--balancer", "kernel");
        var frozen = supervisor.BootedWorkerPids[0];
        // Ready is not yet accepting: each worker opens its gate (and enters FairAccept's rotation) when the
        // supervisor's "accept" reaches it. Frozen before that, it would be no peer to wait for (CI saw it:
        // all served at once, no stall logged). So first it serves a connection of its own.
        await Eventually.ValueAsync(async () =>
        {
            using var probe = supervisor.CreateClient();
            return (await WhoAmI.GetAsync(probe)).Pid;
        }, pid => pid == frozen, TimeSpan.FromSeconds(10), $"worker {frozen} serves a new connection");
        try
        {
            var stopping = await Posix.FreezeAsync(frozen, TimeSpan.FromSeconds(10)); // Stopped before the first client connects.
            output.WriteLine($"worker {frozen} stopped {stopping.TotalMilliseconds:F1} ms after SIGSTOP was sent");
            var clients = Enumerable.Range(0, 10).Select(_ => supervisor.CreateClient()).ToList();
            var started = Stopwatch.GetTimestamp();
            var servedBy = await Task.WhenAll(clients.Select(async client => (await WhoAmI.GetAsync(client)).Pid)).WaitAsync(TimeSpan.FromSeconds(30));
            var elapsed = Stopwatch.GetElapsedTime(started);
            output.WriteLine($"10 connections served in {elapsed.TotalMilliseconds:F0} ms by {string.Join(", ", servedBy.Distinct())}");
            clients.ForEach(client => client.Dispose());
            Assert.DoesNotContain(frozen, servedBy);
            // Four stalls of 50 ms (the allowance doubling 1, 2, 4, 8, 16): about 0.2 s here, 0.3 s with both cores
            // busy; 16 s when a peer once waited for was never passed over (shown). 5 s leaves a loaded machine room.
            Assert.True(elapsed < TimeSpan.FromSeconds(5), $"10 new connections took {elapsed.TotalSeconds:F1} s: the other worker waited for the frozen one");
            await supervisor.WaitForLogAsync($@"fair accept: the worker with pid {frozen} accepted nothing for \d+ ms", TimeSpan.FromSeconds(10));
        }
        finally
        {
            Posix.Kill(frozen, Posix.SIGCONT);
        }
    }
}
