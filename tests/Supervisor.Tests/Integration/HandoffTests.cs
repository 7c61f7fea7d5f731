using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// --balancer handoff: the supervisor deals each new connection to the worker with the fewest open ones.
/// What the kernel cannot do with a shared socket: a burst of connections opened at once (as a load
/// balancer's pool or wrk opens them) is shared evenly, not taken mostly by whichever worker accepts first.
/// </summary>
public sealed class HandoffTests(ITestOutputHelper output)
{
    private const int Connections = 40;

    [Fact]
    public async Task A_burst_of_new_connections_is_dealt_evenly_and_the_places_of_closed_ones_go_back_to_their_worker()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--balancer", "handoff");
        var clients = Enumerable.Range(0, Connections).Select(_ => supervisor.CreateClient()).ToList();
        try
        {
            // Every client opens its connection at the same moment, and keeps it.
            var servedBy = await Task.WhenAll(clients.Select(async client => (await WhoAmI.GetAsync(client)).Pid));
            var shares = servedBy.GroupBy(pid => pid).ToDictionary(group => group.Key, group => group.Count());
            output.WriteLine($"{Connections} connections at once: {string.Join(", ", shares.Select(share => $"pid {share.Key}: {share.Value}"))}");
            Assert.Equal(2, shares.Count);
            Assert.All(shares.Values, count => Assert.Equal(Connections / 2, count));

            // Each kept connection stays with its worker.
            var again = await Task.WhenAll(clients.Select(async client => (await WhoAmI.GetAsync(client)).Pid));
            Assert.Equal(servedBy, again);

            // Connections that close free their worker's places: once the worker has reported the closes,
            // new connections go to it until it has as many as the other. (Were the closes not counted,
            // both would still have 20 and new connections would alternate.)
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
            }, pids => pids.Split(", ").All(pid => pid == $"{first}"), TimeSpan.FromSeconds(10), $"10 new connections all go to worker {first}, whose 20 closed");
            output.WriteLine($"after worker {first}'s connections closed, 10 new ones went to: {burst}");
        }
        finally
        {
            clients.ForEach(client => client.Dispose());
        }
    }
}
