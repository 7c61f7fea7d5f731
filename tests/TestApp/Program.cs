// Misbehaviour at start is chosen through the environment (the supervisor's --env passes it on):
//   TESTAPP_FAIL_AT_START=text   write text to stderr and exit 1 before the server starts
//   TESTAPP_START_DELAY_MS=n     sleep n ms before building the host (a slow or never-ready worker)
if (Environment.GetEnvironmentVariable("TESTAPP_FAIL_AT_START") is { Length: > 0 } failure)
{
    Console.Error.WriteLine(failure);
    return 1;
}
if (int.TryParse(Environment.GetEnvironmentVariable("TESTAPP_START_DELAY_MS"), out var startDelay))
{
    Thread.Sleep(startDelay);
}

var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var app = builder.Build();

app.MapGet("/", () => "ok");
app.MapGet("/whoami", (HttpContext context) => new WhoAmI(
    Environment.ProcessId,
    context.Connection.RemoteIpAddress?.ToString(),
    context.Request.Host.Value,
    context.Request.Scheme,
    Environment.GetEnvironmentVariable("SUPERVISOR_WORKER_ID"),
    Environment.CurrentDirectory));
app.MapGet("/slow", async (int ms) =>
{
    // Tests wait for this line (the supervisor logs worker output) to know the request is in flight.
    Console.WriteLine($"slow request started: {ms} ms");
    // Deliberately not cancelled by shutdown: a graceful stop must let it finish.
    await Task.Delay(ms);
    return Results.Text($"slept {ms} ms in {Environment.ProcessId}");
});
app.MapGet("/env/{name}", (string name) => Environment.GetEnvironmentVariable(name) ?? "");

app.Run();
return 0;

internal sealed record WhoAmI(int Pid, string? RemoteAddress, string? Host, string Scheme, string? WorkerId, string WorkingDirectory);
