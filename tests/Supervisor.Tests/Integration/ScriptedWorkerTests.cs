using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// The real supervisor in front of a worker that speaks HTTP/2 itself (<c>tests/ScriptedWorker</c>) and
/// breaks the protocol on demand, frame by frame, as Kestrel never would. Each broken exchange must end
/// its own request with a bounded answer — 502 before the response began, a cut response after, 504 at
/// --request-timeout — while requests in flight beside it on the same worker are served. Where the RFC
/// scopes the fault to the whole connection, those requests are sent again (idempotent GETs that had no
/// response yet), each on a connection of its own, so the one that broke it breaks only its own again.
/// </summary>
public sealed class ScriptedWorkerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerBound = TimeSpan.FromSeconds(15);

    public static TheoryData<string, string> Cases => new()
    {
        { "informational-ends-stream", "502" },
        { "101", "502" },
        { "many-informational", "502" },
        { "data-before-headers", "502" },
        { "uppercase-field", "502" },
        { "huge-head", "502" },
        { "huffman", "200 huffman" },
        { "settings", "200 settings" },
        { "goaway", "200 after goaway" },
        { "over-window", "cut" },
        { "reset-mid-body", "cut" },
        { "short-body", "cut" },
        { "malformed-at-once", "502" },
        { "size-update-mid-block", "502" },
        { "push-enabled", "502" },
        { "short-ping", "502" },
        { "push-promise", "502" },
        { "silent", "504" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_broken_exchange_ends_its_own_request_with_a_bounded_answer_and_the_others_are_served(string name, string expected)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.ScriptedWorker, "--workers", "1", "--request-timeout", "3");
        using var client = supervisor.CreateClient();
        // In flight at the worker when the broken exchange starts (each case starts once all four have).
        var bystanders = Enumerable.Range(0, 4).Select(_ => client.GetStringAsync("/slow?ms=1500")).ToArray();
        await Eventually.TrueAsync(() => supervisor.Log.Split('\n').Count(line => line.Contains("slow request started", StringComparison.Ordinal)) >= 4,
            TimeSpan.FromSeconds(20), "four bystanders in flight at the worker");

        var stopwatch = Stopwatch.StartNew();
        var outcome = await OutcomeAsync(client, $"/case/{name}").WaitAsync(AnswerBound);
        output.WriteLine($"{name}: {outcome} after {stopwatch.ElapsedMilliseconds} ms");

        Assert.Equal(expected, outcome);
        Assert.All(await Task.WhenAll(bystanders), body => Assert.StartsWith("slept on", body, StringComparison.Ordinal));
        // The front answers before its log line reaches the test through the pipe: wait for the reason, bounded.
        var request = Regex.Escape($"GET /case/{name}");
        if (expected == "cut")
        {
            await supervisor.WaitForLogAsync($@"\[WARNING\] Response from worker \S+ to {request} cut short: ", AnswerBound);
        }
        else if (!expected.StartsWith("200", StringComparison.Ordinal))
        {
            await supervisor.WaitForLogAsync($@"\[WARNING\] Request {request} to worker \S+ answered {expected}: ", AnswerBound);
        }
    }

    // "200 BODY", the status of an error the front answered, or "cut" when the response began and broke off.
    private static async Task<string> OutcomeAsync(HttpClient client, string path)
    {
        HttpResponseMessage response;
        try
        {
            response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
        }
        catch (HttpRequestException exception)
        {
            return $"no response ({exception.Message})";
        }
        using (response)
        {
            try
            {
                var body = await response.Content.ReadAsStringAsync();
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                if (path.EndsWith("huffman", StringComparison.Ordinal))
                {
                    Assert.Equal("caf\u00e9 \u00fcber", System.Text.Encoding.Latin1.GetString([.. response.Headers.NonValidated["x-huffman"].ToString().Select(c => (byte)c)]));
                }
                return $"200 {(body.Length > 40 ? $"{body.Length} octets" : body)}";
            }
            catch (HttpRequestException)
            {
                return "cut";
            }
            catch (IOException)
            {
                return "cut";
            }
        }
    }
}
