import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;

/**
 * HDFS (NameNode + DataNode) and YARN (ResourceManager + NodeManager) in one JVM on loopback,
 * for tests and demos of the jobs on YARN. Writes the client configuration it serves
 * (core-site.xml, hdfs-site.xml, yarn-site.xml) into a HADOOP_CONF_DIR and a "ready" file last,
 * then runs until it is sent SIGTERM, when both clusters stop.
 *
 * Usage: MiniHadoop HOME CONF_DIR NAMENODE_PORT NODEMANAGER_MEMORY_MB NODEMANAGER_VCORES
 * (run with HOME as the working directory: MiniYARNCluster keeps its dirs under ./target).
 */
public final class MiniHadoop {
  private MiniHadoop() {}

  public static void main(String[] args) throws Exception {
    try {
      serve(args);
    } catch (Throwable e) {
      // HDFS and YARN leave non-daemon threads behind: without exit a failed start would hang.
      e.printStackTrace();
      System.exit(1);
    }
  }

  private static void serve(String[] args) throws Exception {
    File home = new File(args[0]).getAbsoluteFile();
    File confDir = new File(args[1]).getAbsoluteFile();
    int nameNodePort = Integer.parseInt(args[2]);
    String nmMemory = args[3];
    String nmVcores = args[4];

    Configuration conf = new YarnConfiguration();
    conf.set("hadoop.tmp.dir", new File(home, "tmp").getPath());
    conf.set("dfs.replication", "1");
    // One user (whoever runs the tests) writes everywhere; a secured cluster is not modelled.
    conf.setBoolean("dfs.permissions.enabled", false);
    // Small containers: Spark's AM and executors ask for a few hundred MB each.
    conf.set("yarn.nodemanager.resource.memory-mb", nmMemory);
    conf.set("yarn.nodemanager.resource.cpu-vcores", nmVcores);
    conf.set("yarn.scheduler.minimum-allocation-mb", "256");
    conf.set("yarn.scheduler.maximum-allocation-mb", nmMemory);
    conf.set("yarn.scheduler.maximum-allocation-vcores", nmVcores);
    // The CapacityScheduler (YARN's default) with one queue; the shaded JARs carry no
    // capacity-scheduler.xml. Spark's AM in cluster mode is the driver: let AMs take half.
    conf.set("yarn.scheduler.capacity.root.queues", "default");
    conf.set("yarn.scheduler.capacity.root.default.capacity", "100");
    conf.set("yarn.scheduler.capacity.maximum-am-resource-percent", "0.5");
    // JVM virtual memory is far above its heap; the physical check would kill a busy
    // Python worker that the container size does not count well. Neither is checked here.
    conf.setBoolean("yarn.nodemanager.vmem-check-enabled", false);
    conf.setBoolean("yarn.nodemanager.pmem-check-enabled", false);
    // A shared disk that is fuller than YARN's 90% default must not mark the node unhealthy.
    conf.set("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", "99");
    conf.set("yarn.nodemanager.disk-health-checker.min-free-space-per-disk-mb", "512");
    // The NodeManager would copy each container's launch_container.sh, which exports the
    // container's environment (the salts spark.yarn.appMasterEnv sets), into its log dir.
    conf.setBoolean("yarn.nodemanager.log-container-debug-info.enabled", false);
    // Containers of finished apps are kept a while for their logs (tests read them).
    conf.set("yarn.nodemanager.delete.debug-delay-sec", "600");

    MiniDFSCluster dfs =
        new MiniDFSCluster.Builder(conf, new File(home, "dfs"))
            .nameNodePort(nameNodePort)
            .numDataNodes(1)
            .format(true)
            .build();
    dfs.waitActive();
    conf.set("fs.defaultFS", dfs.getURI().toString());

    MiniYARNCluster yarn = new MiniYARNCluster("precision-marketing", 1, 1, 1);
    yarn.init(conf);
    yarn.start();
    if (!yarn.waitForNodeManagersToConnect(60_000)) {
      throw new IllegalStateException("the NodeManager did not register in 60 s");
    }

    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  yarn.stop();
                  dfs.shutdown();
                }));

    Configuration served = yarn.getConfig();
    confDir.mkdirs();
    Configuration core = new Configuration(false);
    core.set("fs.defaultFS", dfs.getURI().toString());
    write(core, new File(confDir, "core-site.xml"));
    Configuration hdfs = new Configuration(false);
    hdfs.set("dfs.replication", "1");
    write(hdfs, new File(confDir, "hdfs-site.xml"));
    Configuration site = new Configuration(false);
    for (Map.Entry<String, String> entry : served) {
      String key = entry.getKey();
      // The client needs the ResourceManager's addresses (ports were picked at start).
      if (key.startsWith("yarn.resourcemanager.") && key.endsWith(".address")
          && !key.contains("https")) {
        site.set(key, served.get(key));
      }
    }
    write(site, new File(confDir, "yarn-site.xml"));
    File ready = new File(confDir, "ready");
    Files.writeString(ready.toPath(), dfs.getURI() + " " + served.get("yarn.resourcemanager.address") + "\n");
    System.out.println("MiniHadoop ready: hdfs " + dfs.getURI() + ", yarn "
        + served.get("yarn.resourcemanager.address") + ", conf " + confDir);
    Thread.currentThread().join();
  }

  private static void write(Configuration conf, File target) throws IOException {
    File tmp = new File(target.getPath() + ".tmp");
    try (OutputStream out = new FileOutputStream(tmp)) {
      conf.writeXml(out);
    }
    Files.move(tmp.toPath(), target.toPath(), StandardCopyOption.REPLACE_EXISTING);
  }
}
