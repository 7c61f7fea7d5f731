using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Supervisor.WorkerHost;

/// <summary>What the worker-host adds to the app's host while it is being built.</summary>
internal static class HostCustomization
{
    public static void Apply(object? builder, WorkerAgent agent, WorkerSettings settings)
    {
        switch (builder)
        {
            case HostApplicationBuilder applicationBuilder: // WebApplication.CreateBuilder, Host.CreateApplicationBuilder
                QuietStartupBannerByDefault(applicationBuilder.Configuration);
                OverrideListenUrl(applicationBuilder.Configuration, settings);
                AddServices(applicationBuilder.Services, agent, settings);
                break;
            case IHostBuilder hostBuilder: // Host.CreateDefaultBuilder().ConfigureWebHostDefaults(...)
                hostBuilder.ConfigureAppConfiguration((_, configuration) =>
                {
                    QuietStartupBannerByDefault(configuration);
                    OverrideListenUrl(configuration, settings);
                });
                hostBuilder.ConfigureServices(services => AddServices(services, agent, settings));
                break;
        }
    }

    // ASPNETCORE_URLS already points the app at its socket; an app that sets "urls" in its own
    // appsettings or with UseUrls would override that, so the last configuration source repeats it.
    private static void OverrideListenUrl(IConfigurationBuilder configuration, WorkerSettings settings)
    {
        if (settings.ListenUrl is { Length: > 0 } url)
        {
            configuration.AddInMemoryCollection([new KeyValuePair<string, string?>("urls", url)]);
        }
    }

    // The host's start-up banner ("Now listening on", "Application started. Press Ctrl+C to shut down",
    // the environment and content root) is eight lines per worker in the supervisor's log, and the
    // supervisor logs each worker's readiness itself. Kestrel writes "Now listening on" whatever
    // suppressStatusMessages says, so the banner's category is set to Warning instead, in the first
    // configuration source: the app's own appsettings, or --env Logging__LogLevel__Microsoft.Hosting.Lifetime=Information,
    // still bring it back.
    private static void QuietStartupBannerByDefault(IConfigurationBuilder configuration) =>
        configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = [new KeyValuePair<string, string?>("Logging:LogLevel:Microsoft.Hosting.Lifetime", "Warning")],
        });

    private static void AddServices(IServiceCollection services, WorkerAgent agent, WorkerSettings settings)
    {
        if (settings.Kernel is { } kernel && settings.Serving is { } serving && agent.Gate is { } gate && agent.Served is { } served)
        {
            services.AddSingleton<IStartupFilter>(new ClientServingStartupFilter(serving, agent.AccessLog));
            services.AddSingleton<IStartupFilter>(new KernelRequestsStartupFilter(served, gate));
            services.AddSingleton<IPostConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>>(new KernelListenSetup(kernel, serving.Tls));
            services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(provider =>
            {
                var transport = provider.GetRequiredService<IOptions<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions>>();
                var loggers = provider.GetRequiredService<ILoggerFactory>();
                return kernel.HandoffSocket is null
                    ? new GatedListenerFactory(gate, agent.Fair, kernel.Listeners, transport, loggers)
                    : new HandedConnections(gate, kernel, settings.WorkerKey, transport, loggers);
            });
        }
        else
        {
            services.AddSingleton<IStartupFilter, ForwardedFromSupervisorStartupFilter>();
        }
        if (settings.HeaderAllowance is { } allowance)
        {
            services.AddSingleton<IPostConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>>(new HeaderAllowanceSetup(allowance));
        }
        if (settings.DataProtectionDirectory is { } keyDirectory)
        {
            // Registered whether or not the app uses DataProtection: unused options setups cost nothing.
            services.AddSingleton(provider => new SharedKeyRingSetup(keyDirectory, settings.ApplicationName, provider.GetRequiredService<ILoggerFactory>()));
            services.AddSingleton<IPostConfigureOptions<KeyManagementOptions>>(provider => provider.GetRequiredService<SharedKeyRingSetup>());
            services.AddSingleton<IPostConfigureOptions<DataProtectionOptions>>(provider => provider.GetRequiredService<SharedKeyRingSetup>());
        }
    }
}
