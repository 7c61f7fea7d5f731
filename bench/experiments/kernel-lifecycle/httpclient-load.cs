// A keep-alive GET load from .NET's HttpClient, the client most callers of an ASP.NET Core API use.
// Unlike wrk it sends a request again, on a new connection, when a kept-alive connection closes before
// any byte of the response (RFC 9112 section 9.3.1), so a server closing idle connections costs it
// nothing; what it counts as failed, a caller would have seen fail.
//   dotnet run httpclient-load.cs -- URL SECONDS CONNECTIONS
// Prints "started" when it begins, then one summary line and each distinct error with its count.
using System.Collections.Concurrent;
using System.Diagnostics;

var url = new Uri(args[0]);
var duration = TimeSpan.FromSeconds(int.Parse(args[1]));
var connections = int.Parse(args[2]);
using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = connections, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) };
using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
long succeeded = 0;
long failed = 0;
var errors = new ConcurrentDictionary<string, int>();
var clock = Stopwatch.StartNew();
Console.WriteLine("started");
await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Task.Run(async () =>
{
    while (clock.Elapsed < duration)
    {
        try
        {
            using var response = await client.GetAsync(url);
            await response.Content.ReadAsByteArrayAsync();
            if (response.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref succeeded);
                continue;
            }
            errors.AddOrUpdate($"HTTP {(int)response.StatusCode}", 1, (_, count) => count + 1);
        }
        catch (Exception exception)
        {
            errors.AddOrUpdate(exception.GetBaseException().Message, 1, (_, count) => count + 1);
        }
        Interlocked.Increment(ref failed);
    }
})));
Console.WriteLine($"HttpClient: {succeeded} succeeded, {failed} failed in {clock.Elapsed.TotalSeconds:F0} s ({succeeded / clock.Elapsed.TotalSeconds:F0} req/s)");
foreach (var (error, count) in errors)
{
    Console.WriteLine($"  {count} x {error}");
}
