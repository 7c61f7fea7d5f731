using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using OpenTelemetry.Metrics;
using Serilog;
using Supervisor.Configuration;
using Supervisor.Proxy;

namespace Supervisor.Control;

/// <summary>
/// <c>--admin-bind</c>: the probes of a service manager or an orchestrator, on an address of their own and
/// never on the public side. <c>/livez</c>: the arbiter's loop turns (a stuck supervisor is restarted, a
/// busy one is not). <c>/readyz</c>: a worker is in rotation and the supervisor is not stopping, so it
/// stays ready through a reload (the old generation serves until the new one takes over) and turns 503
/// the moment a stop begins (a load balancer stops sending while requests in flight finish).
/// </summary>
internal sealed class AdminEndpoints : IAsyncDisposable
{
    // Kestrel's default: probes come one at a time.
    private const int ProbeBacklog = 512;

    private readonly WebApplication _app;
    private bool _stopped;

    private AdminEndpoints(WebApplication app, BindAddress bind)
    {
        _app = app;
        Bind = bind;
    }

    public BindAddress Bind { get; }

    /// <summary>Builds the endpoints on <paramref name="bind"/>; <see cref="StartAsync"/> binds it.</summary>
    public static AdminEndpoints Create(BindAddress bind, PoolHealth health, Serilog.ILogger logger)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddSerilog(logger);
        builder.Services.AddSingleton<IHostLifetime, SupervisorHostLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            FrontDoor.Listen(kestrel, bind, certificate: null, new CleartextHttp2Listeners(), ProbeBacklog);
        });
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(SupervisorMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
            .AddPrometheusExporter());
        var app = builder.Build();
        // The probes' own requests are not the pool's traffic: they stay out of the request metrics.
        app.Use((context, next) =>
        {
            if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMetricsTagsFeature>() is { } tags)
            {
                tags.MetricsDisabled = true;
            }
            return next(context);
        });
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/livez", () => Answer(health.NotLive(), "live"));
        app.MapGet("/readyz", () => Answer(health.NotReady(), $"ready: {health.WorkersInRotation} workers in rotation"));
        return new AdminEndpoints(app, bind);
    }

    public Task StartAsync() => _app.StartAsync();

    /// <summary>Where the endpoints really listen (with the port chosen for :0).</summary>
    public IEnumerable<string> Addresses =>
        _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];

    private static IResult Answer(string? failure, string success) =>
        failure is null ? Results.Text(success + "\n") : Results.Text(failure + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);

    /// <summary>Stops listening; the supervisor that took over answers the probes.</summary>
    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await _app.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }
}
